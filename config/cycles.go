package config

// maxCycleErrors bounds how many targets on depends_on cycles are named:
// a cycle of k targets names k cycles of k ids each.
const maxCycleErrors = 100

// dependencyCycles returns, for each target on a depends_on cycle (at most
// maxCycleErrors of them, by index), the cycle through it that
// DependencyCycle finds. It takes time linear in targets and edges plus,
// for each named target, the size of its cycle's component: the strongly
// connected components (Tarjan's, without recursion, so a chain of a
// million targets needs no deep stack) come first, and DependencyCycle
// only walks inside a target's own component, where all of its cycles are.
// Calling DependencyCycle for every target instead walks everything each
// one depends on, directly or not: quadratic on long chains.
func dependencyCycles(targets []Target) map[int][]string {
	n := len(targets)
	index := make(map[string]int32, n)
	for i := range targets {
		if _, dup := index[targets[i].ID]; !dup {
			index[targets[i].ID] = int32(i)
		}
	}
	edges := make([][]int32, n)
	for i := range targets {
		for _, d := range targets[i].DependsOn {
			if j, ok := index[d]; ok && d != targets[i].ID {
				edges[i] = append(edges[i], j)
			}
		}
	}

	// Tarjan: order[v] is v's visit number + 1 (0: not visited yet).
	order := make([]int32, n)
	low := make([]int32, n)
	comp := make([]int32, n) // component number + 1, set when v's component is closed
	size := []int{0}         // size[c] of component c (c ≥ 1)
	var stack []int32
	onStack := make([]bool, n)
	type frame struct{ v, next int32 }
	var calls []frame
	var visited int32
	visit := func(v int32) {
		visited++
		order[v], low[v] = visited, visited
		stack = append(stack, v)
		onStack[v] = true
		calls = append(calls, frame{v: v})
	}
	for root := range int32(n) {
		if order[root] != 0 {
			continue
		}
		visit(root)
		for len(calls) > 0 {
			f := &calls[len(calls)-1]
			v := f.v
			if int(f.next) < len(edges[v]) {
				w := edges[v][f.next]
				f.next++
				if order[w] == 0 {
					visit(w)
				} else if onStack[w] {
					low[v] = min(low[v], order[w])
				}
				continue
			}
			calls = calls[:len(calls)-1]
			if len(calls) > 0 {
				u := calls[len(calls)-1].v
				low[u] = min(low[u], low[v])
			}
			if low[v] == order[v] {
				c := int32(len(size))
				size = append(size, 0)
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = c
					size[c]++
					if w == v {
						break
					}
				}
			}
		}
	}

	out := map[int][]string{}
	for i := range targets {
		c := comp[i]
		if size[c] < 2 || index[targets[i].ID] != int32(i) {
			continue
		}
		within := func(id string) []string {
			var ps []string
			for _, p := range targets[index[id]].DependsOn {
				if j, ok := index[p]; ok && comp[j] == c {
					ps = append(ps, p)
				}
			}
			return ps
		}
		if cyc := DependencyCycle(targets[i].ID, within); cyc != nil {
			out[i] = cyc
			if len(out) == maxCycleErrors {
				break
			}
		}
	}
	return out
}

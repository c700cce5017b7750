package metrics

// pageBits sets the series a page of a seriesTable holds: 256, about 47 KB.
const pageBits = 8

// seriesTable is a growable array of series kept in fixed pages: growing
// never copies it (at 250,000 targets a slice's doubling copied tens of
// megabytes and left up to half its capacity unused), and at most one page
// is partly empty.
type seriesTable struct {
	pages []*[1 << pageBits]targetSeries
	n     int32
}

func (t *seriesTable) len() int32 { return t.n }

// at is series i, 0 <= i < len.
func (t *seriesTable) at(i int32) *targetSeries {
	return &t.pages[i>>pageBits][i&(1<<pageBits-1)]
}

// add appends s and returns its index.
func (t *seriesTable) add(s targetSeries) int32 {
	i := t.n
	if int(i>>pageBits) == len(t.pages) {
		t.pages = append(t.pages, new([1 << pageBits]targetSeries))
	}
	t.n++
	*t.at(i) = s
	return i
}

// pop removes the last series, and its page once empty.
func (t *seriesTable) pop() {
	t.n--
	*t.at(t.n) = targetSeries{}
	if t.n&(1<<pageBits-1) == 0 {
		t.pages[len(t.pages)-1] = nil
		t.pages = t.pages[:len(t.pages)-1]
	}
}

// snapshot copies the series into one new slice.
func (t *seriesTable) snapshot() []targetSeries {
	out := make([]targetSeries, 0, t.n)
	for i, pg := range t.pages {
		n := min(int(t.n)-i<<pageBits, 1<<pageBits)
		out = append(out, pg[:n]...)
	}
	return out
}

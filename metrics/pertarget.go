package metrics

import (
	"io"
	"strconv"
	"sync"
)

// PerTarget is a metric family with one value per target (label target),
// written as text by Handler rather than gathered by client_golang: at
// 100,000 targets a GaugeVec alone took a second per scrape.
type PerTarget struct {
	name, help, typ string

	mu    sync.RWMutex
	index map[string]int // target → position in rows
	rows  []row
}

type row struct {
	id string
	v  float64
}

// NewPerTargetGauge returns an empty gauge family.
func NewPerTargetGauge(name, help string) *PerTarget {
	return &PerTarget{name: name, help: help, typ: "gauge", index: map[string]int{}}
}

// NewPerTargetCounter returns an empty counter family; only Add changes it.
func NewPerTargetCounter(name, help string) *PerTarget {
	return &PerTarget{name: name, help: help, typ: "counter", index: map[string]int{}}
}

// Set sets target's value, adding its series if needed.
func (f *PerTarget) Set(target string, v float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rowLocked(target).v = v
}

// Add adds d to target's value, adding its series at 0 first if needed
// (Add(target, 0) exports a counter before its first increase).
func (f *PerTarget) Add(target string, d float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rowLocked(target).v += d
}

func (f *PerTarget) rowLocked(target string) *row {
	i, ok := f.index[target]
	if !ok {
		i = len(f.rows)
		f.index[target] = i
		f.rows = append(f.rows, row{id: target})
	}
	return &f.rows[i]
}

// Delete removes target's series.
func (f *PerTarget) Delete(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = removeSwap(f.rows, f.index, target, func(r row) string { return r.id })
}

// Value returns target's value and whether it has a series.
func (f *PerTarget) Value(target string) (float64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	i, ok := f.index[target]
	if !ok {
		return 0, false
	}
	return f.rows[i].v, true
}

// WriteTo writes the family in the Prometheus text format; nothing if it
// has no series.
func (f *PerTarget) WriteTo(w io.Writer) (int64, error) {
	f.mu.RLock()
	rows := make([]row, len(f.rows))
	copy(rows, f.rows)
	f.mu.RUnlock()
	if len(rows) == 0 {
		return 0, nil
	}
	out := chunkWriter{w: w, b: make([]byte, 0, chunkSize+4096)}
	out.b = appendHeader(out.b, f.name, f.help, f.typ)
	for i := range rows {
		out.b = openLine(out.b, f.name, labelText(rows[i].id), "", "", "")
		out.b = append(strconv.AppendFloat(out.b, rows[i].v, 'g', -1, 64), '\n')
		out.flushIfFull()
	}
	out.flush()
	return out.n, out.err
}

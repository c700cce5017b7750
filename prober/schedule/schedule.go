// Package schedule runs each target's check on its own interval, spread over
// that interval by a stable per-target phase, on a bounded pool of workers.
//
// One goroutine owns the timing: a min-heap of next-run times and a single
// timer armed for the earliest. Due checks queue for a fixed pool of
// workers; a target whose previous check is still queued or running skips
// its slot rather than running twice at once.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	uwclock "github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/prober"
)

// CheckFunc runs one check of t. It enforces t.Timeout itself and must not
// modify t.
type CheckFunc func(ctx context.Context, t *prober.Target) prober.Result

// SinkFunc takes one result. It may block to apply backpressure; the target
// it belongs to is not checked again until it returns.
type SinkFunc func(ctx context.Context, r prober.Result)

// DefaultWorkers is the size of the worker pool when Options.Workers is 0.
const DefaultWorkers = 64

// DefaultCoalesce is the Options.Coalesce serve and agent use. 10 ms is 1 %
// of the shortest interval (prober.MinInterval). At 100,000 targets it
// took the service from 56-58 % to about 47 % of one core: waking a thread
// for every due check (one every 0.6 ms) and putting it back to sleep cost
// more than the checks' own work in upwatch.
const DefaultCoalesce = 10 * time.Millisecond

// MaxCoalesce bounds the window a user may set: a tenth of the shortest
// interval.
const MaxCoalesce = 100 * time.Millisecond

// Options are the scheduler's dependencies.
type Options struct {
	Check CheckFunc // required
	Sink  SinkFunc  // nil discards results
	// Workers bounds how many checks run at once (default DefaultWorkers).
	Workers int
	// Registerer receives the scheduler's metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil discards logs
	// Now is the clock slots are planned on (default time.Now).
	Now func() time.Time
	// Overran, when set, makes the scheduler bound checks itself, so
	// Check may run on the worker (prober.CheckInline) instead of handing
	// each check to another goroutine and back: a check still running
	// prober.OverrunGrace past its timeout is answered by Overran's result
	// (t, and the check's start), and a new worker takes its worker's
	// place; the overrunning check's own result is dropped when it comes.
	Overran func(t *prober.Target, start time.Time) prober.Result
	// Coalesce, when positive, lets a check start up to this much after its
	// slot, so one wake-up of the dispatcher starts every check due within
	// it: slots are run at the next multiple of Coalesce. At 100,000
	// targets a wake-up per check (one every 0.6 ms) was a thread woken and
	// put back to sleep each time.
	Coalesce time.Duration

	clock clock // tests only; nil is a real clock reading Now
}

// Scheduler runs checks of a changing set of targets. Update may be called
// at any time, before or during Run, from any goroutine.
type Scheduler struct {
	check    CheckFunc
	overran  func(t *prober.Target, start time.Time) prober.Result
	coalesce time.Duration
	sink     SinkFunc
	workers  int
	log      *slog.Logger
	clock    clock
	m        metrics

	umu sync.Mutex // serialises Update
	gen uint64     // counts Updates, guarded by umu

	mu      sync.Mutex
	entries map[string]*entry   // scheduled targets by ID
	due     entryHeap           // the same entries, earliest next run first
	busy    map[string]struct{} // IDs with a check queued or running, even if since removed
	urgent  map[string]struct{} // IDs asked for by CheckNow, not yet queued

	wake        chan struct{} // Update → Run: the earliest deadline may have changed
	started     atomic.Bool   // Run is between its start and its return
	dispatching atomic.Bool   // Run is dispatching checks (not shutting down)

	// onStart, when set by a test before Run, sees every check as a worker
	// starts it.
	onStart func(id string, planned, started time.Time)
}

// entry is one scheduled target, guarded by Scheduler.mu. The Target that
// target points to is never modified: a change replaces the pointer, and
// workers read the old one safely.
type entry struct {
	id       string
	fp       string
	target   *prober.Target
	interval time.Duration
	offset   time.Duration // stable phase within interval
	next     time.Time     // planned start of the next check
	index    int           // position in the heap
	gen      uint64        // the latest Update that listed it
}

// job is one due check on its way to a worker.
type job struct {
	target  *prober.Target
	planned time.Time
}

// New returns a scheduler with no targets. It panics if o.Check is nil.
func New(o Options) *Scheduler {
	if o.Check == nil {
		panic("schedule: Options.Check is nil")
	}
	s := &Scheduler{
		check:    o.Check,
		overran:  o.Overran,
		coalesce: o.Coalesce,
		sink:     o.Sink,
		workers:  o.Workers,
		log:      o.Logger,
		clock:    o.clock,
		m:        newMetrics(o.Registerer),
		entries:  make(map[string]*entry),
		busy:     make(map[string]struct{}),
		urgent:   make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
	}
	if s.sink == nil {
		s.sink = func(context.Context, prober.Result) {}
	}
	if s.workers <= 0 {
		s.workers = DefaultWorkers
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = realClock{now: uwclock.Or(o.Now)}
	}
	return s
}

// Running reports whether Run is dispatching checks; it turns false as soon
// as shutdown begins.
func (s *Scheduler) Running() bool { return s.dispatching.Load() }

// Update replaces the set of targets. Targets are matched by ID: a new one is
// scheduled at its stable phase, one whose Fingerprint changed runs its new
// configuration from its next slot (recomputed only if its interval
// changed), a missing or paused one is dropped (a check of it already
// running finishes, but it is not run again). Every other target keeps its
// schedule exactly. Targets need a non-empty ID and a positive Interval
// (see prober.Target.Normalize); others are logged and ignored, as are
// repeated IDs after the first. The caller must not modify the targets'
// contents after the call.
func (s *Scheduler) Update(targets []prober.Target) {
	// Updates are serialised, so the entries do not change between the
	// passes below; Run only moves their next runs.
	s.umu.Lock()
	defer s.umu.Unlock()
	s.gen++
	gen := s.gen

	// First pass: match each target to its entry. One that is a copy of
	// the scheduled one (prober.Target.SameConfig) keeps its fingerprint
	// and is done: only new and changed targets are copied and hashed (a
	// JSON encoding and a SHA-256 each), so an API write with 250,000
	// targets costs map look-ups, not seconds of hashing.
	type want struct {
		t  *prober.Target
		e  *entry // nil for a new target
		fp string
	}
	var (
		wants []want
		fresh = map[string]struct{}{} // new IDs, to refuse repeats
	)
	s.mu.Lock()
	for i := range targets {
		t := &targets[i]
		switch {
		case t.Paused:
			continue
		case t.ID == "" || t.Interval <= 0:
			s.log.Warn("target not scheduled: needs an id and a positive interval", "target", t.ID, "name", t.Name, "interval", t.Interval)
			continue
		}
		e := s.entries[t.ID]
		_, repeated := fresh[t.ID]
		if repeated || (e != nil && e.gen == gen) {
			s.log.Warn("target not scheduled: duplicate id", "target", t.ID)
			continue
		}
		if e == nil {
			fresh[t.ID] = struct{}{}
		} else {
			e.gen = gen
			if e.target.SameConfig(t) {
				continue
			}
		}
		c := *t
		wants = append(wants, want{t: &c, e: e})
	}
	s.mu.Unlock()
	for i := range wants {
		wants[i].fp = wants[i].t.Fingerprint()
	}

	now := s.clock.Now()
	var added, changed, removed int
	s.mu.Lock()
	for id, e := range s.entries {
		if e.gen != gen {
			s.due.remove(e.index)
			delete(s.entries, id)
			removed++
		}
	}
	for _, w := range wants {
		id, e := w.t.ID, w.e
		switch {
		case e == nil:
			e = &entry{id: id, fp: w.fp, target: w.t, interval: w.t.Interval, offset: Offset(id, w.t.Interval), gen: gen}
			e.next = nextSlot(now, e.interval, e.offset)
			s.entries[id] = e
			s.due.push(e)
			added++
		case e.fp != w.fp:
			e.fp, e.target = w.fp, w.t
			if e.interval != w.t.Interval {
				e.interval, e.offset = w.t.Interval, Offset(id, w.t.Interval)
				e.next = nextSlot(now, e.interval, e.offset)
				s.due.fix(e.index)
			}
			changed++
		}
	}
	n := len(s.entries)
	s.mu.Unlock()

	s.m.targets.Set(float64(n))
	if added+changed+removed > 0 {
		s.log.Info("schedule updated", "targets", n, "added", added, "changed", changed, "removed", removed)
	}
	s.poke()
}

// CheckNow asks for one extra check of target id as soon as a worker is
// free, outside its schedule: its phase and next slot stay as they were.
// The check starts after the call (one already queued or running when
// asked is waited for, then the extra one runs). It reports false if id is
// not scheduled. Repeated calls before the check starts ask once.
func (s *Scheduler) CheckNow(id string) bool {
	s.mu.Lock()
	_, ok := s.entries[id]
	if ok {
		s.urgent[id] = struct{}{}
	}
	s.mu.Unlock()
	if ok {
		s.poke()
	}
	return ok
}

// poke tells Run to look at its timers and the urgent checks again.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches checks until ctx ends, then stops dispatching, waits for
// the checks already started and their results to reach the sink, and
// returns nil. Checks and the sink get a context that ctx's end does not
// cancel: each check is bounded by its own timeout. Run returns an error at
// once if the scheduler is already running.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("schedule: already running")
	}
	defer s.started.Store(false)

	jobs := make(chan job)
	var wg sync.WaitGroup
	work := context.WithoutCancel(ctx)
	// A worker leaves when jobs closes, or when its check overran and a
	// new worker took its place (which already counted it out of wg: Run's
	// end does not wait for a check that ignores its deadline).
	var worker, replace func()
	worker = func() {
		for j := range jobs {
			if !s.runJob(work, j, replace) {
				return
			}
		}
		wg.Done()
	}
	replace = func() { wg.Add(1); go worker(); wg.Done() }
	for range s.workers {
		wg.Add(1)
		go worker()
	}

	tm := s.clock.NewTimer()
	defer tm.Stop()
	arm := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.due) > 0 {
			tm.ResetAt(coalesced(s.due[0].e.next, s.coalesce))
		} else {
			tm.Stop()
		}
	}
	s.mu.Lock()
	s.realignLocked(s.clock.Now())
	s.mu.Unlock()
	arm()
	s.dispatching.Store(true)
	s.log.Info("scheduler started", "workers", s.workers)

	var (
		queue []job // due, waiting for a free worker
		head  int   // queue[head] is the next to hand out
	)
	for {
		var (
			out  chan<- job
			next job
		)
		if head < len(queue) {
			out, next = jobs, queue[head]
		}
		select {
		case <-ctx.Done():
			s.dispatching.Store(false)
			close(jobs)
			s.mu.Lock()
			for _, j := range queue[head:] {
				delete(s.busy, j.target.ID)
			}
			s.mu.Unlock()
			s.log.Info("scheduler stopping, waiting for running checks", "dropped", len(queue)-head)
			wg.Wait()
			return nil
		case <-tm.C():
			now := s.clock.Now()
			s.mu.Lock()
			queue = s.collectLocked(now, queue)
			s.mu.Unlock()
			arm()
		case <-s.wake:
			now := s.clock.Now()
			s.mu.Lock()
			queue = s.collectUrgentLocked(now, queue)
			s.mu.Unlock()
			arm()
		case out <- next:
			queue[head] = job{}
			head++
			if head == len(queue) {
				queue, head = queue[:0], 0
			}
		}
	}
}

// coalesced is t rounded up to a multiple of c (t itself when c is not
// positive).
func coalesced(t time.Time, c time.Duration) time.Time {
	if c <= 0 {
		return t
	}
	if r := t.Truncate(c); r.Before(t) {
		return r.Add(c)
	}
	return t
}

// collectLocked moves every entry due at now onto queue and schedules its
// next slot. A slot whose target is still busy, or that the scheduler was
// too late for, is skipped and counted as missed.
func (s *Scheduler) collectLocked(now time.Time, queue []job) []job {
	for at := now.UnixNano(); len(s.due) > 0 && s.due[0].at <= at; {
		e := s.due[0].e
		if _, busy := s.busy[e.id]; busy {
			s.m.missedBusy.Inc()
			s.log.Debug("check skipped: previous one still running", "target", e.id, "planned", e.next)
		} else {
			s.busy[e.id] = struct{}{}
			queue = append(queue, job{target: e.target, planned: e.next})
		}
		e.next = e.next.Add(e.interval)
		if !e.next.After(now) {
			// More than an interval late (a stalled process or a
			// clock jump): drop the missed slots instead of
			// running them back to back.
			missed := now.Sub(e.next)/e.interval + 1
			s.m.missedBehind.Add(float64(missed))
			e.next = e.next.Add(missed * e.interval)
		}
		s.due.fix(0)
	}
	return queue
}

// collectUrgentLocked queues the checks asked for by CheckNow. One whose
// target is busy stays asked for until that check ends.
func (s *Scheduler) collectUrgentLocked(now time.Time, queue []job) []job {
	for id := range s.urgent {
		e, ok := s.entries[id]
		if !ok {
			delete(s.urgent, id)
			continue
		}
		if _, busy := s.busy[id]; busy {
			continue
		}
		delete(s.urgent, id)
		s.busy[id] = struct{}{}
		queue = append(queue, job{target: e.target, planned: now})
	}
	return queue
}

// realignLocked moves every entry whose next run has passed (it was added
// before Run, or Run was stopped) to its next slot from now, so starting
// does not fire them all at once. Those slots are not counted as missed: nothing
// was running to miss them.
func (s *Scheduler) realignLocked(now time.Time) {
	moved := false
	for _, e := range s.entries {
		if e.next.Before(now) {
			e.next = nextSlot(now, e.interval, e.offset)
			moved = true
		}
	}
	if moved {
		s.due.init()
	}
}

// runJob runs one check on a worker and hands its result to the sink. It
// reports false when the check overran (see Options.Overran): replace was
// called, and the worker must leave.
func (s *Scheduler) runJob(ctx context.Context, j job, replace func()) bool {
	start := s.clock.Now()
	lag := start.Sub(j.planned)
	s.m.lag.Observe(lag.Seconds())
	if lag > lateAfter(j.target.Interval) {
		s.m.late.Inc()
	}
	if s.onStart != nil {
		s.onStart(j.target.ID, j.planned, start)
	}
	s.m.inFlight.Inc()
	var state atomic.Int32 // jobRunning, then jobDone or jobOverran
	if s.overran != nil && j.target.Timeout > 0 {
		watchdog := time.AfterFunc(j.target.Timeout+prober.OverrunGrace, func() {
			if state.CompareAndSwap(jobRunning, jobOverran) {
				// The result first: until replace, the overrunning
				// worker still counts, so Run's end waits for it.
				s.finishJob(ctx, j, s.overran(j.target, start))
				replace()
			}
		})
		defer watchdog.Stop()
	}
	res := s.safeCheck(ctx, j.target, start)
	if !state.CompareAndSwap(jobRunning, jobDone) {
		return false
	}
	s.finishJob(ctx, j, res)
	return true
}

// The states of a running job; whoever moves it out of jobRunning (the
// check returning, or its watchdog) delivers its result.
const (
	jobRunning int32 = iota
	jobDone
	jobOverran
)

// finishJob hands a job's result to the sink and frees its target.
func (s *Scheduler) finishJob(ctx context.Context, j job, res prober.Result) {
	id := j.target.ID
	defer func() {
		s.mu.Lock()
		delete(s.busy, id)
		_, asked := s.urgent[id]
		s.mu.Unlock()
		if asked {
			s.poke()
		}
	}()
	res.Scheduled = j.planned
	s.m.inFlight.Dec()
	s.safeSink(ctx, res)
}

func (s *Scheduler) safeCheck(ctx context.Context, t *prober.Target, start time.Time) (res prober.Result) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("check panicked", "target", t.ID, "panic", v, "stack", string(debug.Stack()))
			res = prober.Result{TargetID: t.ID, Target: t.Name, Kind: t.Kind, Start: start, Duration: s.clock.Now().Sub(start)}.
				Fail(prober.ClassInternal, fmt.Sprintf("check panicked: %v", v))
		}
	}()
	return s.check(ctx, t)
}

func (s *Scheduler) safeSink(ctx context.Context, r prober.Result) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("result sink panicked", "target", r.TargetID, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	s.sink(ctx, r)
}

// nextRun is the planned start of id's next check, for tests.
func (s *Scheduler) nextRun(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok {
		return time.Time{}, false
	}
	return e.next, true
}

// Offset is the stable phase of target id within interval: a hash of the ID
// modulo the interval, in [0, interval). Checks of the target start at
// Unix-epoch-aligned multiples of interval plus Offset, so the phase is the
// same on every prober and across restarts.
func Offset(id string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(interval))
}

// nextSlot is the earliest time at or after now whose Unix nanoseconds are
// offset modulo interval.
func nextSlot(now time.Time, interval, offset time.Duration) time.Time {
	n, iv := now.UnixNano(), int64(interval)
	base := n - ((n%iv)+iv)%iv
	at := base + int64(offset)
	if at < n {
		at += iv
	}
	return time.Unix(0, at)
}

// entryHeap is a min-heap of entries by next run. Each slot carries its
// entry's next run as a number, so ordering never dereferences an entry:
// at 100,000 targets the cache misses of comparing through pointers (and
// container/heap's interface calls) were most of the scheduler's own CPU.
// After changing an entry's next, fix its slot.
type entryHeap []heapSlot

type heapSlot struct {
	at int64 // e.next in Unix nanoseconds
	e  *entry
}

func (h *entryHeap) push(e *entry) {
	e.index = len(*h)
	*h = append(*h, heapSlot{at: e.next.UnixNano(), e: e})
	h.up(e.index)
}

// remove takes the entry at slot i out of the heap.
func (h *entryHeap) remove(i int) {
	last := len(*h) - 1
	gone := (*h)[i].e
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = heapSlot{}
	*h = (*h)[:last]
	gone.index = -1
	if i != last {
		h.fix(i)
	}
}

// fix restores the order after the next run of the entry at slot i changed.
func (h entryHeap) fix(i int) {
	h[i].at = h[i].e.next.UnixNano()
	if !h.down(i) {
		h.up(i)
	}
}

// init orders the whole heap, after any number of entries changed.
func (h entryHeap) init() {
	for i := range h {
		h[i].at = h[i].e.next.UnixNano()
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h entryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].e.index, h[j].e.index = i, j
}

func (h entryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].at <= h[i].at {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts slot i towards the leaves and reports whether it moved.
func (h entryHeap) down(i int) bool {
	start, n := i, len(h)
	for {
		least := 2*i + 1
		if least >= n {
			break
		}
		if r := least + 1; r < n && h[r].at < h[least].at {
			least = r
		}
		if h[i].at <= h[least].at {
			break
		}
		h.swap(i, least)
		i = least
	}
	return i > start
}

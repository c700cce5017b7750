package prober

import "time"

// runnerIdle is how long a runner waits for another check before it ends.
const runnerIdle = 10 * time.Second

// runners runs each check on a goroutine of its own (see bounded), reusing
// goroutines that have just finished one: a new goroutine starts on a small
// stack that a check grows by copying it several times, which cost 3.5 % of
// the service's CPU at 100,000 targets. A runner busy with a check is never
// handed another, so a check that overruns its deadline holds up no other;
// a runner that finds no work for runnerIdle ends, so a burst of slow
// checks leaves no goroutines behind.
type runners struct {
	work chan func()
	idle time.Duration
}

func newRunners() runners { return runners{work: make(chan func()), idle: runnerIdle} }

// run starts f on an idle runner, or on a new one when none is idle.
func (r runners) run(f func()) {
	select {
	case r.work <- f:
	default:
		go r.loop(f)
	}
}

func (r runners) loop(f func()) {
	idle := time.NewTimer(r.idle)
	defer idle.Stop()
	for {
		f()
		f = nil // let the check's closure go while this runner waits
		idle.Reset(r.idle)
		select {
		case f = <-r.work:
		case <-idle.C:
			return
		}
	}
}

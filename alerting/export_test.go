package alerting

// Watched is how many targets Tick visits (DOWN or held), for tests.
func (e *Engine) Watched() int {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	return len(e.watch)
}

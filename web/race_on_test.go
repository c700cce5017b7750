//go:build race

package web

// raceDetector is true under -race, where the 1,000-target page runs are
// left to the plain pass of `make test` (test-future): they measure page
// weight and rendering, not concurrency, and take minutes with the detector.
const raceDetector = true

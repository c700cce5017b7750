//go:build race

package sqlite

// raceDetector is true under -race, where the long storage runs are left to
// the plain pass of `make test` (test-future): they exercise the codec and
// the disk, not concurrency, and take minutes with the detector.
const raceDetector = true

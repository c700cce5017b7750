//go:build !unix

package app

import "os"

// tryLock does nothing where flock is missing: one process per data dir is
// then the operator's to ensure.
func tryLock(*os.File) error { return nil }

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile in the data dir is held (flock, exclusive) for as long as a
// serve process runs, so a second process on the same data dir stops at
// start instead of writing the same files. It holds the owner's PID, for
// the message.
const LockFile = "lock"

// errLocked is what tryLock returns when another process holds the lock.
var errLocked = errors.New("locked")

// dirLock is a held lock on a data dir.
type dirLock struct{ f *os.File }

// lockDataDir creates dir if needed and takes its lock; the error names the
// dir and, when the lock file says, the PID of the process holding it.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, errors.Unwrap(err))
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: lock: %w", dir, errors.Unwrap(err))
	}
	if err := tryLock(f); err != nil {
		_ = f.Close()
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data dir %s: lock: %w", dir, err)
		}
		who := "another upwatch process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				who = fmt.Sprintf("another upwatch process (PID %d)", pid)
			}
		}
		return nil, fmt.Errorf("data dir %s is in use by %s; give each process its own data_dir", dir, who)
	}
	// The PID is a hint for the message above; the lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up (closing the file drops the flock). The file
// stays: removing it would race with a process that just opened it.
func (l *dirLock) release() {
	if l != nil {
		_ = l.f.Close()
	}
}

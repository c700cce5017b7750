// Package sqlitedb opens SQLite files the way every embedded store of
// upwatch wants them: the pure-Go driver, WAL, a busy timeout, write
// transactions that take the lock at BEGIN, and errors that name the file in
// one line.
package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// basePragmas hold for every database; Open adds the caller's.
var basePragmas = []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)", "temp_store(MEMORY)"}

// Open opens path with at most conns connections. Write transactions begin
// IMMEDIATE, so two writers (in this process or another) queue at BEGIN
// rather than fail at COMMIT.
func Open(path string, conns int, pragmas ...string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range append(append([]string{}, basePragmas...), pragmas...) {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// CheckPath makes sure the directory exists and the file can be opened for
// reading and writing, so a bad path fails with the operating system's plain
// reason rather than SQLite's "out of memory (14)". label names the store in
// the error ("sqlite store", "registry store").
func CheckPath(label, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return PathError(label, path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return PathError(label, path, err)
	}
	return f.Close()
}

// PathError gives one line naming the store and the path; an *os.PathError
// is unwrapped so the path is not said twice.
func PathError(label, path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	} else if errors.As(err, &pe) {
		err = fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return fmt.Errorf("%s %q: %w", label, path, err)
}

// IsBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func IsBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}

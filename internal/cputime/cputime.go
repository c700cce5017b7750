// Package cputime reads the CPU time this process has used, for benchmarks
// and measurements that report CPU rather than wall time: on a machine
// shared with other work the wall clock says more about the neighbours.
package cputime

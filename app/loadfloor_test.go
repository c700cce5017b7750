//go:build unix

package app

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/cputime"
)

// TestLoadScaleFloor is the yardstick of TestLoadScale (`make load-floor`):
// the CPU that the bare minimum of a check costs this process on this
// machine, at the same rate against the same loopback server in a child
// process. Each "check" is a goroutine that dials a new connection, writes
// a GET, parses the response with net/http and closes: no scheduling,
// storage, metrics or alerting. Most of it is the kernel's loopback TCP
// (connect, close), which no uptime checker opening a connection per check
// avoids. The service's CPU divided by this is its overhead. Same
// environment as TestLoadScale (UPWATCH_LOAD_TARGETS, UPWATCH_LOAD_INTERVAL);
// it runs for one interval.
func TestLoadScaleFloor(t *testing.T) {
	n, iv, target := loadSetup(t, "load-floor")
	u, err := url.Parse(target)
	require.NoError(t, err)
	addr := u.Host
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: floor\r\nConnection: close\r\n\r\n")

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	check := func() {
		defer wg.Done()
		ok := func() bool {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return false
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(req); err != nil {
				return false
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return false
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err == nil && resp.StatusCode == http.StatusOK
		}()
		if !ok {
			mu.Lock()
			failed++
			mu.Unlock()
		}
	}
	defer cpuProfile(t)()
	every := iv / time.Duration(n)
	cpu0, t0 := cputime.Used(), time.Now()
	for i := range n {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * every)))
		wg.Add(1)
		go check()
	}
	wg.Wait()
	cpu, wall := cputime.Used()-cpu0, time.Since(t0)
	t.Logf("floor: %d connections in %s (%.1f/s), %d failed: CPU %.1f %% of one core, %.0f µs per connection",
		n, wall.Round(time.Millisecond), float64(n)/wall.Seconds(), failed, 100*cpu.Seconds()/wall.Seconds(), float64(cpu.Microseconds())/float64(n))
	require.Zero(t, failed)
}

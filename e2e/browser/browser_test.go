package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// Environment the tests read.
const (
	envChromium        = "UPWATCH_CHROMIUM"         // the browser binary (default /usr/bin/chromium)
	envRequireChromium = "UPWATCH_REQUIRE_CHROMIUM" // fail instead of skipping without it
	envArtifacts       = "UPWATCH_ARTIFACTS_DIR"    // where step screenshots go
	envDocsImages      = "UPWATCH_DOCS_IMAGES"      // where the README's pictures go (make screenshots)
)

// The viewport of every screenshot, so the README's pictures are stable.
const viewportW, viewportH = 1280, 800

// wait bounds every wait on the page: generous, since the machine is
// shared; a passing run waits only as long as the condition takes.
const wait = 60 * time.Second

// shared is the one browser of this test package: starting Chromium costs
// a second or two, so tests share it and each gets its own browser
// context (cookies, storage) and tab.
var shared struct {
	once    sync.Once
	ctx     context.Context // the browser; nil if it could not start
	err     error
	cleanup func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cleanup != nil {
		shared.cleanup()
	}
	os.Exit(code)
}

func chromiumPath() string {
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browser returns the shared browser, starting it on first use. Without
// Chromium the test skips, or fails when UPWATCH_REQUIRE_CHROMIUM is set.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv(envRequireChromium) != "" {
			t.Fatalf("%s is set but there is no browser at %s: run bash .ci/services/chromium.sh install", envRequireChromium, path)
		}
		t.Skipf("no browser at %s (bash .ci/services/chromium.sh install; %s=path to use another)", path, envChromium)
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "upwatch-chromium-")
		if err != nil {
			shared.err = err
			return
		}
		// These flags keep Chromium to the loopback pages it is given: the
		// background connections it makes by default (updates, sync, QUIC
		// probes) are refused on the CI machines and slow it down.
		opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox, // runs as root in CI
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(dir), // fresh: no profile state between runs
			chromedp.WindowSize(viewportW, viewportH),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		shared.cleanup = func() {
			cancelBrowser()
			cancelAlloc()
			_ = os.RemoveAll(dir)
		}
		// Run with no actions starts the browser; on the browser's own
		// context, since cancelling the context of this first Run would
		// close it.
		if err := chromedp.Do(bctx); err != nil {
			shared.err = fmt.Errorf("starting %s: %w", path, err)
			return
		}
		shared.ctx = bctx
	})
	require.NoError(t, shared.err)
	return shared.ctx
}

// tab is one test's page: a new browser context (its own cookies) and tab
// at the fixed viewport. JavaScript exceptions on any page fail the test.
type tab struct {
	t     *testing.T
	ctx   context.Context
	dir   string // screenshots
	shots int
	mu    sync.Mutex
	jsErr []string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	dir := t.TempDir()
	if d := os.Getenv(envArtifacts); d != "" {
		dir = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	tb := &tab{t: t, ctx: ctx, dir: dir}
	// The first run opens the tab, which lives as long as that run's
	// context: so not one of run's bounded contexts.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(viewportW, viewportH)))
	console := make(chan struct{})
	go func() {
		defer close(console)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return // the tab is closing
			}
			if m.IsException() {
				tb.mu.Lock()
				tb.jsErr = append(tb.jsErr, m.String())
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			tb.shot("failed")
			if html, err := run(tb, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
				_ = os.WriteFile(filepath.Join(tb.dir, "failed.html"), []byte(html), 0o644)
			}
			t.Logf("screenshots and the failing page are in %s", tb.dir)
		}
		cancel()
		<-console
		tb.mu.Lock()
		defer tb.mu.Unlock()
		if len(tb.jsErr) > 0 {
			t.Errorf("JavaScript exceptions: %s", strings.Join(tb.jsErr, "; "))
		}
	})
	return tb
}

// run runs one action within the wait bound and returns its value.
func run[T any](tb *tab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, wait)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// value runs one action and fails the test on an error.
func value[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	v, err := run(tb, a)
	require.NoError(tb.t, err)
	return v
}

// run runs steps in order within the wait bound and fails the test on an
// error.
func (tb *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	_, err := run(tb, chromedp.Steps(steps...))
	require.NoError(tb.t, err)
}

// shot saves a screenshot of the viewport as a test artefact, numbered in
// the order taken, and returns its PNG bytes.
func (tb *tab) shot(name string) []byte {
	tb.t.Helper()
	png, err := run(tb, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	tb.shots++
	path := filepath.Join(tb.dir, fmt.Sprintf("%02d-%s.png", tb.shots, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
	}
	return png
}

// docsShot saves a screenshot also as the README's picture name.png when
// UPWATCH_DOCS_IMAGES is set.
func (tb *tab) docsShot(name string) {
	tb.t.Helper()
	png := tb.shot(name)
	if d := os.Getenv(envDocsImages); d != "" && png != nil {
		require.NoError(tb.t, os.WriteFile(filepath.Join(d, name+".png"), png, 0o644))
		tb.t.Logf("wrote %s", filepath.Join(d, name+".png"))
	}
}

// cdpCall makes an action of one DevTools protocol command.
func cdpCall[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[R] {
	return func(ctx context.Context, _ *chromedp.Target) (R, error) {
		return chromedp.Call(ctx, cmd, params)
	}
}

// resolve makes href absolute against the page's URL.
func resolve(base, href string) string {
	b, err := url.Parse(base)
	if err != nil {
		return href
	}
	h, err := url.Parse(href)
	if err != nil {
		return href
	}
	return b.ResolveReference(h).String()
}

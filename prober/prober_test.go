package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testPanicKind is a check kind that panics, registered before any test
// runs (so no test races the map).
const testPanicKind = "test-panic"

// testStuckKind is a check kind that ignores its context for 3s.
const testStuckKind = "test-stuck"

func init() {
	kinds[testPanicKind] = func(context.Context, *Prober, *Target) Result { panic("target made the check explode") }
	kinds[testStuckKind] = func(context.Context, *Prober, *Target) Result {
		time.Sleep(3 * time.Second)
		var r Result
		return r.Fail(ClassProtocol, "returned late")
	}
}

// A check that does not stop at its deadline still ends there: Check
// answers a timeout within the timeout and a generous slack, and records
// no more than the timeout.
func TestCheckEndsAtItsDeadline(t *testing.T) {
	p := New(Options{})
	tgt := &Target{ID: "stuck", Name: "stuck", Kind: testStuckKind, Interval: time.Minute, Timeout: 500 * time.Millisecond}
	began := time.Now()
	r := p.Check(context.Background(), tgt)
	took := time.Since(began)
	require.Equal(t, ClassTimeout, r.ErrorClass, r.Error)
	require.Contains(t, r.Error, "did not stop at its deadline")
	require.Less(t, took, 2*time.Second, "Check waited for the stuck check")
	require.LessOrEqual(t, r.Duration, tgt.Timeout)
}

// A check that panics is recovered and reported, never fatal.
func TestCheckRecoversFromAPanic(t *testing.T) {
	p := New(Options{Location: "eu-1"})
	tgt := &Target{ID: "broken", Name: "broken", Kind: testPanicKind, Interval: time.Minute, Timeout: time.Second}
	r := p.Check(context.Background(), tgt)
	require.False(t, r.Success)
	require.Equal(t, ClassInternal, r.ErrorClass)
	require.Contains(t, r.Error, "panicked")
	require.Equal(t, "broken", r.TargetID)
	require.Equal(t, "eu-1", r.Location)
	require.False(t, r.Start.IsZero())
}

func TestCheckUnknownKind(t *testing.T) {
	r := New(Options{}).Check(context.Background(), &Target{ID: "x", Kind: "gopher", Timeout: time.Second})
	require.Equal(t, ClassInternal, r.ErrorClass)
	require.Equal(t, "local", r.Location, "the default location")
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want ErrorClass
	}{
		{fmt.Errorf("x: %w", ErrBlocked), ClassBlocked},
		{context.DeadlineExceeded, ClassTimeout},
		{context.Canceled, ClassCanceled},
		{&net.DNSError{Err: "no such host", Name: "nx.example"}, ClassDNS},
		{&net.DNSError{Err: "timeout", Name: "slow.example", IsTimeout: true}, ClassTimeout},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ClassConnect},
		{errors.New("tls: handshake failure"), ClassTLS},
		{errors.New("something odd"), ClassProtocol},
	}
	for _, c := range cases {
		got, _ := Classify(c.err)
		require.Equal(t, c.want, got, "%v", c.err)
	}
}

func TestErrorsHideURLCredentials(t *testing.T) {
	err := &url.Error{Op: "Get", URL: "https://user:hunter2@example.com/x?token=s3cret&a=b", Err: errors.New("refused")}
	_, msg := Classify(err)
	require.NotContains(t, msg, "hunter2")
	require.NotContains(t, msg, "s3cret")
	require.True(t, strings.Contains(msg, "example.com"), msg)
}

// SameConfig must look at every field of Target: changing any one of them
// (a new field included, once added) makes a target not the same.
func TestSameConfigCoversEveryField(t *testing.T) {
	base := Target{ID: "a", Name: "a", Kind: "http", Interval: time.Minute, Timeout: time.Second,
		Labels: map[string]string{"team": "x"}, HTTP: &HTTPSpec{URL: "http://a.example/"}}
	cp := base
	if !base.SameConfig(&cp) {
		t.Fatal("a shallow copy is not the same")
	}
	typ := reflect.TypeFor[Target]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		u := base
		v := reflect.ValueOf(&u).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int64, reflect.Int:
			v.SetInt(v.Int() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Map:
			v.Set(reflect.ValueOf(map[string]string{"team": "y"}))
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.Zero(f.Type.Elem())))
		case reflect.Pointer:
			v.Set(reflect.New(f.Type.Elem()))
		default:
			t.Fatalf("field %s of kind %s: teach this test and SameConfig about it", f.Name, v.Kind())
		}
		if base.SameConfig(&u) {
			t.Errorf("changing %s keeps SameConfig true", f.Name)
		}
	}
}

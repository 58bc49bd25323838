package cachix

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/stall"
)

// TestBackoffRange checks cachix's full-jitter schedule: retry n waits in
// [d, 2d] with d = Base·2ⁿ/2, capped at MaxDelay.
func TestBackoffRange(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{}.withDefaults()
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{4, 8 * time.Second, 15 * time.Second},
		{5, 15 * time.Second, 15 * time.Second},
		{63, 15 * time.Second, 15 * time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			t.Parallel()
			seen := map[time.Duration]bool{}
			for range 200 {
				d := p.backoff(tc.n)
				if d < tc.min || d > tc.max {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.n, d, tc.min, tc.max)
				}
				seen[d] = true
			}
			if tc.min != tc.max && len(seen) < 2 {
				t.Errorf("backoff(%d) is not jittered", tc.n)
			}
		})
	}
}

// TestRetryHint checks Retry-After and retry_after parsing.
func TestRetryHint(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   time.Duration
	}{
		{name: "seconds", header: map[string]string{"Retry-After": "7"}, want: 7 * time.Second},
		{name: "date", header: map[string]string{"Retry-After": "Sun, 01 Jun 2025 12:00:30 GMT"}, want: 30 * time.Second},
		{name: "past date", header: map[string]string{"Retry-After": "Sun, 01 Jun 2025 11:00:00 GMT"}, want: 0},
		{name: "zero", header: map[string]string{"Retry-After": "0"}, want: 0},
		{name: "negative", header: map[string]string{"Retry-After": "-5"}, want: 0},
		{name: "garbage", header: map[string]string{"Retry-After": "soon"}, want: 0},
		{name: "problem+json", header: map[string]string{"Content-Type": "application/problem+json"},
			body: `{"retry_after": 12}`, want: 12 * time.Second},
		{name: "json with charset", header: map[string]string{"Content-Type": "application/json; charset=utf-8"},
			body: `{"retry_after": 3}`, want: 3 * time.Second},
		{name: "header wins over body", header: map[string]string{"Retry-After": "2", "Content-Type": "application/json"},
			body: `{"retry_after": 9}`, want: 2 * time.Second},
		{name: "unparsable header, body used", header: map[string]string{"Retry-After": "soon", "Content-Type": "application/json"},
			body: `{"retry_after": 9}`, want: 9 * time.Second},
		{name: "zero header is a hint of zero", header: map[string]string{"Retry-After": "0", "Content-Type": "application/json"},
			body: `{"retry_after": 9}`, want: 0},
		{name: "text body ignored", header: map[string]string{"Content-Type": "text/plain"},
			body: `{"retry_after": 12}`, want: 0},
		{name: "retry_after zero", header: map[string]string{"Content-Type": "application/json"},
			body: `{"retry_after": 0}`, want: 0},
		{name: "not json", header: map[string]string{"Content-Type": "application/json"}, body: `<html>`, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{StatusCode: 503, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
			for k, v := range tc.header {
				resp.Header.Set(k, v)
			}
			if got := retryHint(resp, now); got != tc.want {
				t.Errorf("retryHint = %v, want %v", got, tc.want)
			}
			rest, _ := io.ReadAll(resp.Body)
			if string(rest) != tc.body {
				t.Errorf("body after the hint = %q, want it intact (%q)", rest, tc.body)
			}
		})
	}
}

// TestRetryBudget checks that hints replace the computed delay, are
// clamped, and are honoured while the budget lasts, even when the wait
// ends past it, and that retrying stops once the budget is spent.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	hinted := func(secs string) *http.Response {
		h := http.Header{}
		h.Set("Retry-After", secs)
		return &http.Response{StatusCode: 429, Header: h, Body: http.NoBody}
	}
	ctx := context.Background()

	// 1s hints under a 2.5s budget: after 0s, 1s and 2s of waiting the
	// budget is not spent, after 3s it is.
	s := &retryState{policy: RetryPolicy{MaxTotal: 2500 * time.Millisecond}.withDefaults()}
	for i, want := range []bool{true, true, true, false} {
		got, err := s.check(ctx, hinted("1"), nil)
		if got != want || err != nil {
			t.Fatalf("check %d = %v, %v; want %v", i, got, err, want)
		}
	}
	if !s.exhausted || s.total != 3*time.Second || s.attempts != 4 {
		t.Errorf("state %+v, want exhausted after 3s of waiting and 4 attempts", s)
	}

	// A 100s hint under the 90s budget is honoured (README: Retry-After up
	// to 120 s), once: the budget is spent after it.
	s = &retryState{policy: RetryPolicy{}.withDefaults()}
	if got, _ := s.check(ctx, hinted("100"), nil); !got || s.next != 100*time.Second {
		t.Errorf("a 100s hint under a 90s budget: retry %v, next %v; want a retry after 100s", got, s.next)
	}
	if got, _ := s.check(ctx, hinted("100"), nil); got || !s.exhausted {
		t.Errorf("a second 100s hint was retried: the budget is spent")
	}
	// A hint is clamped to MaxHint.
	s = &retryState{policy: RetryPolicy{MaxHint: time.Second}.withDefaults()}
	if got, _ := s.check(ctx, hinted("3600"), nil); !got || s.next != time.Second {
		t.Errorf("hint not clamped: retry %v, next %v", got, s.next)
	}
	// Without retries (--retry-for 0) a hint changes nothing.
	s = &retryState{policy: RetryPolicy{None: true}.withDefaults()}
	if got, _ := s.check(ctx, hinted("1"), nil); got {
		t.Errorf("retried with retries disabled")
	}
}

// TestRetryClassification checks which outcomes are retried.
func TestRetryClassification(t *testing.T) {
	t.Parallel()
	resp := func(code int) *http.Response {
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody}
	}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "https://x", Err: err} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		resp *http.Response
		err  error
		want bool
	}{
		{name: "200", resp: resp(200), want: false},
		{name: "429", resp: resp(429), want: true},
		{name: "500", resp: resp(500), want: true},
		{name: "599", resp: resp(599), want: true},
		{name: "400", resp: resp(400), want: false},
		{name: "401", resp: resp(401), want: false},
		{name: "403", resp: resp(403), want: false},
		{name: "404", resp: resp(404), want: false},
		{name: "EOF", err: urlErr(io.EOF), want: true},
		{name: "unexpected EOF", err: urlErr(io.ErrUnexpectedEOF), want: true},
		{name: "reset", err: urlErr(syscall.ECONNRESET), want: true},
		{name: "refused", err: urlErr(syscall.ECONNREFUSED), want: true},
		{name: "canceled", err: urlErr(context.Canceled), want: false},
		{name: "bad certificate", err: urlErr(x509.UnknownAuthorityError{}), want: false},
		{name: "bad scheme", err: urlErr(errors.New(`unsupported protocol scheme "ftp"`)), want: false},
		{name: "context done", ctx: cancelled, resp: resp(503), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			s := &retryState{policy: RetryPolicy{}.withDefaults()}
			got, err := s.check(ctx, tc.resp, tc.err)
			if got != tc.want {
				t.Errorf("retry = %v, want %v", got, tc.want)
			}
			if tc.ctx != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}
}

// TestConnectionFailureAndDescribe checks which failures mean a host
// cannot be reached at all (fail-fast) and the few words each is shown as.
func TestConnectionFailureAndDescribe(t *testing.T) {
	t.Parallel()
	dial := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: err}}}
	}
	tests := []struct {
		name        string
		err         error
		unreachable bool
		words       string
	}{
		{"refused", dial(syscall.ECONNREFUSED), true, "connection refused"},
		{"no route", dial(syscall.EHOSTUNREACH), true, "no route to host"},
		{"network down", dial(syscall.ENETUNREACH), true, "network is unreachable"},
		{"unknown name", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}}}, true, "unknown host name"},
		{"reset after connecting", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "read", Net: "tcp",
			Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}}, false, "connection reset"},
		{"stall", &url.Error{Op: "Get", URL: "https://x", Err: &StallError{After: time.Minute}}, false, "no progress for 60 s"},
		{"closed", &url.Error{Op: "Get", URL: "https://x", Err: io.EOF}, false, "the connection was closed before the answer was complete"},
	}
	for _, tt := range tests {
		if got := stall.ConnectFailure(tt.err); got != tt.unreachable {
			t.Errorf("%s: connectionFailure = %v, want %v", tt.name, got, tt.unreachable)
		}
		if got := describe(tt.err); got != tt.words {
			t.Errorf("%s: describe = %q, want %q", tt.name, got, tt.words)
		}
	}
}

// TestScrubberShortToken: a long token is removed wherever it appears; a
// short one wherever it stands alone, without mangling the words around it.
func TestScrubberShortToken(t *testing.T) {
	t.Parallel()
	long := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
	for _, c := range []struct{ token, in, want string }{
		{long, "Authorization: Bearer " + long, "Authorization: Bearer <redacted>"},
		{long, "glued" + long + "glued", "glued<redacted>glued"},
		{"x", "lookup cachix.org: no such host", "lookup cachix.org: no such host"},
		{"x", "Bearer x", "Bearer <redacted>"},
		{"x", `token "x" refused; x`, `token "<redacted>" refused; <redacted>`},
		{"abc", "token=abc&abcd", "token=<redacted>&abcd"},
	} {
		if got := scrubber(c.token)(c.in); got != c.want {
			t.Errorf("scrub(%q, %q) = %q, want %q", c.token, c.in, got, c.want)
		}
	}
}

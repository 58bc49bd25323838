package s3cache_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/internal/stall/stalltest"
	"github.com/cachix-select/cachix-select/pushlib/s3cache"
)

// keys are made-up credentials for servers that never check them.
var keys = lookup("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY", "not-a-real-secret")

// openAt opens a cache at endpoint with the network bounds of mod, under
// a 60 s limit so that a hang fails the test instead of stopping it.
func openAt(t *testing.T, endpoint string, mod func(*s3cache.Options)) (time.Duration, error) {
	t.Helper()
	opts := s3cache.Options{URL: "s3://nix-cache?scheme=http&endpoint=" + endpoint, LookupEnv: keys}
	mod(&opts)
	c, err := s3cache.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Open(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Open still running after 60 s (the bounds did not apply): %v", err)
	}
	return time.Since(start), err
}

// An endpoint that takes the request and never answers fails each attempt
// after the stall timeout, and the retries end with the budget.
func TestStalledEndpointGivesUp(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	var open []net.Conn // held, so that no finalizer closes one (the client would see EOF)
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }() // read everything, never answer
		}
	}()
	took, err := openAt(t, ln.Addr().String(), func(o *s3cache.Options) {
		o.StallTimeout, o.RetryFor = 200*time.Millisecond, time.Second
	})
	if err == nil || !errors.Is(err, s3cache.ErrUnreachable) ||
		!strings.Contains(err.Error(), "no progress for 200 ms") || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("got %v, want ErrUnreachable saying no progress for 200 ms and gave up", err)
	}
	if n := conns.Load(); n < 2 {
		t.Errorf("%d connections: the stalled attempt was not retried", n)
	}
	t.Logf("%v after %v, %d attempts", err, took, conns.Load())
}

// A service that keeps answering 503 is retried for the budget, then the
// error names the status; with no retries (RetryFor < 0) it is asked once.
func TestRetryBudgetOn503(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
	}))
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	_, err := openAt(t, endpoint, func(o *s3cache.Options) { o.RetryFor = 800 * time.Millisecond })
	if err == nil || !strings.Contains(err.Error(), "kept answering HTTP 503") || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("got %v, want the 503 and the retries named", err)
	}
	if n := hits.Load(); n < 2 {
		t.Errorf("%d requests: not retried within the budget", n)
	}
	t.Log(err)
	hits.Store(0)
	_, err = openAt(t, endpoint, func(o *s3cache.Options) { o.RetryFor = -1 })
	if err == nil {
		t.Fatal("Open succeeded against a 503")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("RetryFor < 0: %d requests, want 1", n)
	}
	if strings.Contains(err.Error(), "kept answering") || !strings.Contains(err.Error(), "SlowDown") {
		t.Errorf("RetryFor < 0: %v, want the service's own answer (SlowDown), once", err)
	}
}

// An expired session token is not retried (no retry renews it), and says
// so; an S3 code minio-go retries whatever the status (RequestTimeout on a
// 400) counts against the budget.
func TestExpiredTokenAndRetriedCodes(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	code := atomic.Value{}
	code.Store("ExpiredToken")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`<?xml version="1.0"?><Error><Code>` + code.Load().(string) + `</Code><Message>m</Message></Error>`))
	}))
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	_, err := openAt(t, endpoint, func(o *s3cache.Options) { o.RetryFor = time.Minute })
	if !errors.Is(err, backend.ErrUnauthorized) || !strings.Contains(err.Error(), "ExpiredToken") {
		t.Errorf("expired token: %v, want ErrUnauthorized naming ExpiredToken", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("expired token: %d requests, want 1", n)
	}
	code.Store("RequestTimeout")
	hits.Store(0)
	took, err := openAt(t, endpoint, func(o *s3cache.Options) { o.RetryFor = 700 * time.Millisecond })
	if err == nil || !strings.Contains(err.Error(), "gave up after") || hits.Load() < 2 {
		t.Errorf("RequestTimeout: %v after %v and %d requests, want retries ended by the budget", err, took, hits.Load())
	}
}

// With FailFast an endpoint that refuses connections is given up at the
// first attempt, permanently (the push stops).
func TestFailFastRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = openAt(t, endpoint, func(o *s3cache.Options) { o.FailFast, o.RetryFor = true, time.Minute })
	if !errors.Is(err, backend.ErrUnreachable) || !backend.Permanent(err) || strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("got %v, want a permanent backend.ErrUnreachable after one attempt", err)
	}
}

// An answer that trickles in, slower than the stall timeout overall but
// moving, is not cut.
func TestSlowMovingAnswerIsNotCut(t *testing.T) {
	t.Parallel()
	srv := cacheInfoServer(t, 30*time.Millisecond) // ~1.5 s in all
	took, err := openAt(t, strings.TrimPrefix(srv.URL, "http://"), func(o *s3cache.Options) {
		o.StallTimeout, o.RetryFor = time.Second, -1
	})
	if err != nil {
		t.Fatalf("a moving answer was cut: %v", err)
	}
	if took < time.Second {
		t.Errorf("took %v: the answer did not trickle", took)
	}
}

// cacheInfoServer answers every GET with a nix-cache-info, a byte per
// pause when pause is not 0.
func cacheInfoServer(t *testing.T, pause time.Duration) *httptest.Server {
	body := "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/x-nix-cache-info")
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if pause == 0 {
			_, _ = io.WriteString(w, body)
			return
		}
		w.WriteHeader(http.StatusOK)
		for i := range body {
			_, _ = w.Write([]byte{body[i]})
			w.(http.Flusher).Flush()
			time.Sleep(pause)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A connection slower to make than the stall timeout, within the connect
// timeout, is waited for; one that never ends is cut at twice the
// connect timeout plus the stall timeout, and the error says no
// connection was made.
func TestSlowDialIsNotAStall(t *testing.T) {
	t.Parallel()
	srv := cacheInfoServer(t, 0)
	var dials atomic.Int32
	_, err := openAt(t, strings.TrimPrefix(srv.URL, "http://"), func(o *s3cache.Options) {
		o.StallTimeout, o.ConnectTimeout, o.RetryFor = 100*time.Millisecond, 5*time.Second, -1
		o.Transport = stalltest.SlowDial(500*time.Millisecond, &dials)
	})
	if err != nil {
		t.Fatalf("Open over a dial of 0.5 s with a 0.1 s stall timeout: %v", err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1", n)
	}

	_, err = openAt(t, strings.TrimPrefix(srv.URL, "http://"), func(o *s3cache.Options) {
		o.StallTimeout, o.ConnectTimeout, o.RetryFor = 100*time.Millisecond, 100*time.Millisecond, -1
		o.Transport = stalltest.SlowDial(-1, &dials)
	})
	if err == nil || !strings.Contains(err.Error(), "no connection made in 300 ms") {
		t.Fatalf("Open over a dial that never ends = %v, want no connection made in 300 ms", err)
	}
}

package cachix_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/events/eventstest"
	"github.com/cachix-select/cachix-select/pushlib/internal/stall/stalltest"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
)

// silentListener accepts connections and never reads or answers, like a
// host whose server process hangs. It returns the address.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return l.Addr().String()
}

// quickTimeouts fail a stalled attempt in a fifth of a second.
var quickTimeouts = cachix.Timeouts{Connect: time.Second, Stall: 200 * time.Millisecond}

// cacheInfoHandler answers GET /cache/NAME like Cachix, for Open.
func cacheInfoHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"name": testCache, "uri": "https://" + testCache + ".cachix.org",
		"isPublic": true, "publicSigningKeys": []string{}, "permission": "Write"})
}

// TestSilentHostFailsWithinBound: a host that accepts the connection and
// never answers fails each attempt after the stall timeout, is retried
// under the budget (which counts the time spent, not only the delays), and
// the push gets a one-line error naming the host.
func TestSilentHostFailsWithinBound(t *testing.T) {
	t.Parallel()
	addr := silentListener(t)
	retry := cachix.RetryPolicy{Base: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxTotal: 500 * time.Millisecond}
	b := newBackend(t, "http://"+addr, func(o *cachix.Options) { o.Timeouts = quickTimeouts; o.Retry = retry })
	start := time.Now()
	_, err := b.Open(t.Context())
	took := time.Since(start)
	var nerr *cachix.NetworkError
	if !errors.As(err, &nerr) {
		t.Fatalf("Open = %v, want a NetworkError", err)
	}
	msg := err.Error()
	for _, want := range []string{"no answer from " + addr + ": no progress for 200 ms", "gave up after"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "context canceled") {
		t.Errorf("error %q is not one clean line", msg)
	}
	if nerr.Attempts < 2 {
		t.Errorf("%d attempts: a stalled attempt must be retried", nerr.Attempts)
	}
	// Budget 0.5 s of retrying plus one last 0.2 s attempt; counting only
	// the millisecond delays, it would retry a hundred times (20 s).
	if took > 5*time.Second {
		t.Errorf("gave up after %v", took)
	}
}

// TestAnswerThatStalls: the host sends headers and part of the body, then
// nothing. The attempt fails as a stall and is retried.
func TestAnswerThatStalls(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"name":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Timeouts = quickTimeouts })
	_, err := b.CacheInfo(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no progress for 200 ms") || !strings.Contains(err.Error(), srv.Listener.Addr().String()) {
		t.Fatalf("CacheInfo = %v, want a stall naming the host", err)
	}
	if attempts.Load() < 2 {
		t.Errorf("%d attempts: a stalled answer must be retried", attempts.Load())
	}
}

// slowStorage is a minimal Cachix API whose storage reads each part at
// rate bytes per 20 ms, or not at all when rate is 0.
func slowStorage(t *testing.T, rate int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var puts atomic.Int32
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cache/"+testCache, cacheInfoHandler)
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"narId": testNarID, "uploadId": testUploadID})
	})
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar/{narId}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"uploadUrl": srv.URL + "/storage/" + r.URL.Query().Get("partNumber")})
	})
	stop := make(chan struct{})
	mux.HandleFunc("PUT /storage/{part}", func(w http.ResponseWriter, r *http.Request) {
		puts.Add(1)
		if rate == 0 {
			// A handler that has not read the body does not see the client
			// go away: wait for the end of the test.
			<-stop
			return
		}
		buf := make([]byte, rate)
		for {
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.Header().Set("ETag", `"etag-`+r.PathValue("part")+`"`)
	})
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar/{narId}/complete", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar/{narId}/abort", func(http.ResponseWriter, *http.Request) {})
	// A small receive buffer keeps what the handler has not read yet in the
	// client's send queue, as a slow link does, instead of in the server's
	// kernel, where the client could not tell it apart from a hang.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 512<<10)
		})
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return srv, &puts
}

// TestSlowUploadIsNotCut: a part that takes many times the stall timeout
// to upload, but keeps moving, goes through: there is no limit on the
// total time of a transfer, only on a stretch without progress (which the
// watchdog also sees in the kernel's send queue draining after the last
// byte left the process).
func TestSlowUploadIsNotCut(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the send queue is only visible on Linux")
	}
	t.Parallel()
	srv, puts := slowStorage(t, 32<<10) // 1.6 MB/s: a 5 MiB part takes 3.3 s
	stall := cachix.Timeouts{Connect: time.Second, Stall: time.Second}
	b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Timeouts = stall })
	info := vectorInfo(t)
	payload := patterned(cachix.MinChunkSize)
	start := time.Now()
	p, err := b.Upload(t.Context(), info, narstream.DefaultCompression, fakeStream(payload, info.NarHash, info.NarSize))
	if err != nil {
		t.Fatalf("a slow but moving upload failed after %v: %v", time.Since(start), err)
	}
	if err := p.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 3*stall.Stall {
		t.Fatalf("the upload took %v, not longer than the stall timeout: the test proves nothing", took)
	}
	if n := puts.Load(); n != 1 {
		t.Errorf("%d PUTs, want 1 (no attempt cut and retried)", n)
	}
}

// TestUploadToStorageThatStopsReading: storage that takes the connection
// and never reads the part fails the attempt after the stall timeout; it
// is retried, then the upload fails with a one-line error naming the host.
func TestUploadToStorageThatStopsReading(t *testing.T) {
	t.Parallel()
	srv, puts := slowStorage(t, 0)
	b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Timeouts = quickTimeouts })
	info := vectorInfo(t)
	start := time.Now()
	_, err := b.Upload(t.Context(), info, narstream.DefaultCompression, fakeStream(patterned(cachix.MinChunkSize), info.NarHash, info.NarSize))
	if err == nil || !strings.Contains(err.Error(), "no progress for 200 ms") || !strings.Contains(err.Error(), srv.Listener.Addr().String()) {
		t.Fatalf("Upload = %v, want a stall naming the storage host", err)
	}
	if puts.Load() < 2 {
		t.Errorf("%d PUTs: a stalled part must be retried", puts.Load())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %v", took)
	}
}

// TestFailFast: with FailFast, a host that refuses connections is given
// up after one attempt (ErrUnreachable, permanent for this push); once a
// host has answered, the same failure is retried as usual.
func TestFailFast(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := newBackend(t, "http://"+addr, func(o *cachix.Options) { o.FailFast = true })
	_, err = b.Open(t.Context())
	var nerr *cachix.NetworkError
	if !errors.As(err, &nerr) || nerr.Attempts != 1 || !errors.Is(err, backend.ErrUnreachable) || !backend.Permanent(err) {
		t.Fatalf("Open = %v (%+v), want one attempt and ErrUnreachable", err, nerr)
	}
	if !strings.Contains(err.Error(), "cannot reach "+addr+": connection refused") {
		t.Errorf("error %q", err)
	}

	// A host that answered once and then goes away is retried.
	srv := httptest.NewServer(http.HandlerFunc(cacheInfoHandler))
	b = newBackend(t, srv.URL, func(o *cachix.Options) { o.FailFast = true })
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_, err = b.CacheInfo(t.Context())
	if !errors.As(err, &nerr) || nerr.Attempts < 2 || errors.Is(err, backend.ErrUnreachable) {
		t.Fatalf("after an answer: %v (%+v), want retries", err, nerr)
	}
}

// TestHostRetryAnnouncedOnce: the first retry of a host says so, once,
// through the events of the context (the library prints nothing).
func TestHostRetryAnnouncedOnce(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	rec := &eventstest.Recorder{}
	ctx := events.NewContext(context.Background(), rec)
	b := newBackend(t, srv.URL, nil)
	for i := 0; i < 2; i++ {
		if _, err := b.CacheInfo(ctx); err == nil {
			t.Fatal("a 503 succeeded")
		}
	}
	got := rec.OfKind(events.HostRetry)
	if len(got) != 1 {
		t.Fatalf("%d host-retry events, want 1: %+v", len(got), got)
	}
	host := srv.Listener.Addr().String()
	want := fmt.Sprintf("%s answers HTTP 503 Service Unavailable; retrying for up to 40 ms", host)
	if got[0].Message != want || got[0].Host != host {
		t.Errorf("event %+v, want message %q", got[0], want)
	}

	// A Retry-After that ends past the budget is waited for, and said so
	// (not "retrying for up to 40 ms" before a wait of a second).
	hinted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	t.Cleanup(hinted.Close)
	rec = &eventstest.Recorder{}
	b = newBackend(t, hinted.URL, nil)
	_, _ = b.CacheInfo(events.NewContext(context.Background(), rec))
	got = rec.OfKind(events.HostRetry)
	want = fmt.Sprintf("%s answers HTTP 429 Too Many Requests and asks to wait 1 s; waiting for it, though that ends past the 40 ms of retrying",
		hinted.Listener.Addr().String())
	if len(got) != 1 || got[0].Message != want {
		t.Errorf("events %+v, want one with %q", got, want)
	}

	// Connection refused reads "cannot reach".
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	rec = &eventstest.Recorder{}
	b = newBackend(t, "http://"+addr, nil)
	_, _ = b.CacheInfo(events.NewContext(context.Background(), rec))
	got = rec.OfKind(events.HostRetry)
	if len(got) != 1 || got[0].Message != "cannot reach "+addr+" (connection refused); retrying for up to 40 ms" {
		t.Errorf("events %+v", got)
	}
}

// TestSlowDialIsNotAStall: a connection that takes longer to make than
// the stall timeout, but less than the connect timeout, is waited for:
// the stall timeout counts from the connection on.
func TestSlowDialIsNotAStall(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(cacheInfoHandler))
	t.Cleanup(srv.Close)
	var dials atomic.Int32
	b := newBackend(t, srv.URL, func(o *cachix.Options) {
		o.Timeouts = cachix.Timeouts{Connect: 5 * time.Second, Stall: 100 * time.Millisecond}
		o.HTTPClient = &http.Client{Transport: stalltest.SlowDial(500*time.Millisecond, &dials)}
	})
	if _, err := b.CacheInfo(t.Context()); err != nil {
		t.Fatalf("CacheInfo over a dial of 0.5 s with a 0.1 s stall timeout: %v", err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1: the slow dial must not have been cut and retried", n)
	}
}

// TestDialThatNeverEnds: when the transport's own connect timeouts do not
// end a connection attempt, the watchdog does, at twice the connect
// timeout plus the stall timeout, and says so.
func TestDialThatNeverEnds(t *testing.T) {
	t.Parallel()
	var dials atomic.Int32
	retry := cachix.RetryPolicy{Base: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxTotal: 200 * time.Millisecond}
	b := newBackend(t, "http://127.0.0.1:9", func(o *cachix.Options) {
		o.Timeouts = cachix.Timeouts{Connect: 100 * time.Millisecond, Stall: 100 * time.Millisecond}
		o.HTTPClient = &http.Client{Transport: stalltest.SlowDial(-1, &dials)}
		o.Retry = retry
	})
	start := time.Now()
	_, err := b.CacheInfo(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no connection made in 300 ms") {
		t.Fatalf("CacheInfo = %v, want no connection made in 300 ms", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 10*time.Second {
		t.Errorf("gave up after %v", took)
	}
}

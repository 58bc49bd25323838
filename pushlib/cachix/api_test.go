package cachix_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
)

// cacheInfoJSON is a GET /cache answer with the given permission and method.
func cacheInfoJSON(permission, method string) string {
	return fmt.Sprintf(`{"name":%q,"uri":"https://mycache.cachix.org","isPublic":true,`+
		`"publicSigningKeys":["mycache.cachix.org-1:ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="],`+
		`"githubUsername":"someone","permission":%q,"preferredCompressionMethod":%q}`, testCache, permission, method)
}

// serve starts a test server whose every request is counted and answered by h.
func serve(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestOpen checks Open in token-only mode (GET /cache and its error
// mapping) and with a signing key (no request at all).
func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		token      string
		signed     bool
		wantReqs   int32
		wantIs     error
		wantMsg    []string
		wantMethod narstream.Method
	}{
		{name: "zstd preferred", status: 200, body: cacheInfoJSON("Write", "ZSTD"), token: testToken,
			wantReqs: 1, wantMethod: narstream.Zstd},
		{name: "xz preferred", status: 200, body: cacheInfoJSON("Admin", "XZ"), token: testToken,
			wantReqs: 1, wantMethod: narstream.XZ},
		{name: "read-only token", status: 200, body: cacheInfoJSON("Read", "ZSTD"), token: testToken,
			wantReqs: 1, wantIs: backend.ErrUnauthorized, wantMsg: []string{"only read cache mycache"}},
		{name: "401 with token", status: 401, token: testToken,
			body:     "Binary cache mycache doesn't exist or you're not authorized to access.",
			wantReqs: 1, wantIs: backend.ErrUnauthorized,
			wantMsg: []string{"cache mycache does not exist or this token cannot write to it (token from $CACHIX_AUTH_TOKEN)",
				"HTTP 401", "you're not authorized to access"}},
		{name: "403 like 401", status: 403, token: testToken, wantReqs: 1, wantIs: backend.ErrUnauthorized,
			wantMsg: []string{"this token cannot write to it"}},
		{name: "404", status: 404, token: testToken, wantReqs: 1, wantIs: backend.ErrCacheNotFound,
			wantMsg: []string{"cache mycache does not exist"}},
		{name: "400 is not retried", status: 400, body: "nope", token: testToken, wantReqs: 1,
			wantMsg: []string{"HTTP 400", "nope"}},
		{name: "signing key: no request", signed: true, token: testToken, wantReqs: 0},
		{name: "signing key without token", signed: true, wantReqs: 0},
		{name: "neither token nor key", wantReqs: 0, wantIs: backend.ErrUnauthorized,
			wantMsg: []string{"neither an auth token nor a signing key for cache mycache", "CACHIX_AUTH_TOKEN",
				"CACHIX_SIGNING_KEY", "cachix.dhall"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, n := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != apiPrefix {
					http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			b := newBackend(t, srv.URL, func(o *cachix.Options) {
				o.Token = tc.token
				if tc.signed {
					o.SigningKey = vectorKeyParsed(t)
				}
			})
			info, err := b.Open(t.Context())
			if got := n.Load(); got != tc.wantReqs {
				t.Errorf("%d requests, want %d", got, tc.wantReqs)
			}
			if tc.wantIs == nil && len(tc.wantMsg) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.wantMethod == "" && info.PreferredCompression != nil:
					t.Errorf("PreferredCompression = %v, want none", info.PreferredCompression)
				case tc.wantMethod != "" && (info.PreferredCompression == nil ||
					*info.PreferredCompression != narstream.Compression{Method: tc.wantMethod, Level: 2}):
					t.Errorf("PreferredCompression = %v, want %s level 2", info.PreferredCompression, tc.wantMethod)
				}
				return
			}
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", err, tc.wantIs)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

// TestOpenUnreachable checks that a network failure names the host.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	b := newBackend(t, "http://"+addr, nil)
	_, err = b.Open(t.Context())
	var nerr *cachix.NetworkError
	if !errors.As(err, &nerr) {
		t.Fatalf("error %v is not a NetworkError", err)
	}
	if !strings.Contains(err.Error(), "cannot reach "+addr) {
		t.Errorf("error %q does not name the host", err)
	}
	if nerr.Attempts < 2 {
		t.Errorf("%d attempts, want retries on a refused connection", nerr.Attempts)
	}
	if backend.Permanent(err) {
		t.Error("a network failure should not be permanent")
	}
}

// TestMissingNoTokenMessages checks the no-token wording on the bulk query
// (signing key only, as cachix allows for public self-signed caches).
func TestMissingNoTokenMessages(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("Authorization sent without a token")
		}
		http.Error(w, "Binary cache mycache doesn't exist or you're not authorized", http.StatusUnauthorized)
	})
	b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Token = ""; o.SigningKey = vectorKeyParsed(t) })
	_, err := b.Missing(t.Context(), []string{vectorPath})
	if !errors.Is(err, backend.ErrUnauthorized) {
		t.Fatalf("error %v is not ErrUnauthorized", err)
	}
	if !strings.Contains(err.Error(), "cache mycache does not exist or is private and needs an auth token") {
		t.Errorf("error %q lacks the no-token explanation", err)
	}
}

// TestMissingBatches checks that hashes go out in batches of at most
// 32768, one after another, and that answers map back to the paths.
func TestMissingBatches(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		batches [][]string
		active  atomic.Int32
	)
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if active.Add(1) != 1 {
			t.Error("batches overlap")
		}
		defer active.Add(-1)
		if r.Method != http.MethodPost || r.URL.Path != apiPrefix+"/narinfo" {
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != jsonBodyType {
			t.Errorf("Content-Type %q", ct)
		}
		var hashes []string
		if err := json.NewDecoder(r.Body).Decode(&hashes); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		batches = append(batches, hashes)
		mu.Unlock()
		// Every third hash is missing.
		missing := []string{}
		for i, h := range hashes {
			if i%3 == 0 {
				missing = append(missing, h)
			}
		}
		writeJSON(w, missing)
	})
	b := newBackend(t, srv.URL, nil)
	const n = 2*32768 + 1
	paths := make([]string, n)
	for i := range paths {
		var d [20]byte
		d[0], d[1], d[2] = byte(i), byte(i>>8), byte(i>>16)
		paths[i] = "/nix/store/" + nixbase32.EncodeToString(d[:]) + fmt.Sprintf("-p%d", i)
	}
	paths = append(paths, paths[0]) // duplicates are asked once
	missing, err := b.Missing(t.Context(), paths)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{}
	for _, batch := range batches {
		sizes = append(sizes, len(batch))
	}
	if fmt.Sprint(sizes) != "[32768 32768 1]" {
		t.Fatalf("batch sizes %v, want [32768 32768 1]", sizes)
	}
	if batches[0][0] != paths[0][11:43] || len(batches[0][0]) != 32 {
		t.Errorf("first hash sent %q, want the bare hash part of %s", batches[0][0], paths[0])
	}
	want := 0
	for _, batch := range batches {
		want += (len(batch) + 2) / 3
	}
	if len(missing) != want {
		t.Errorf("%d missing paths, want %d", len(missing), want)
	}
	if !missing[paths[0]] || missing[paths[1]] || !missing[paths[32768]] || !missing[paths[n-1]] {
		t.Error("missing paths do not map back to the right store paths")
	}
}

// TestMissingRefusesOtherStores checks the store-dir check.
func TestMissingRefusesOtherStores(t *testing.T) {
	t.Parallel()
	srv, n := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, []string{}) })
	b := newBackend(t, srv.URL, nil)
	_, err := b.Missing(t.Context(), []string{"/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"})
	if !errors.Is(err, backend.ErrNotSupported) || !strings.Contains(err.Error(), "/nix/store") {
		t.Errorf("error %v, want ErrNotSupported naming /nix/store", err)
	}
	if n.Load() != 0 {
		t.Error("a request was sent")
	}
	got, err := b.Missing(t.Context(), nil)
	if err != nil || len(got) != 0 || n.Load() != 0 {
		t.Errorf("Missing(nil) = %v, %v after %d requests; want empty, no request", got, err, n.Load())
	}
}

// TestRetryStatuses checks which answers are retried: 429, 5xx and
// dropped connections are, 400/401/403/404 are not.
func TestRetryStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fail     func(w http.ResponseWriter)
		wantReqs int32
		wantOK   bool
	}{
		{name: "429", fail: status(429), wantReqs: 3, wantOK: true},
		{name: "500", fail: status(500), wantReqs: 3, wantOK: true},
		{name: "501", fail: status(501), wantReqs: 3, wantOK: true},
		{name: "502", fail: status(502), wantReqs: 3, wantOK: true},
		{name: "503", fail: status(503), wantReqs: 3, wantOK: true},
		{name: "dropped connection", fail: hijackClose, wantReqs: 3, wantOK: true},
		{name: "400", fail: status(400), wantReqs: 1},
		{name: "401", fail: status(401), wantReqs: 1},
		{name: "403", fail: status(403), wantReqs: 1},
		{name: "404", fail: status(404), wantReqs: 1},
		{name: "409", fail: status(409), wantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := &atomic.Int32{}
			srv := newServer(t, failTimes(2, tc.fail, n, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, cacheInfoJSON("Write", "ZSTD"))
			}))
			// Two retries must fit the budget however busy the machine is:
			// the budget counts wall time since the first failure.
			b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Retry.MaxTotal = 10 * time.Second })
			_, err := b.CacheInfo(t.Context())
			if got := n.Load(); got != tc.wantReqs {
				t.Errorf("%d requests, want %d", got, tc.wantReqs)
			}
			if tc.wantOK != (err == nil) {
				t.Errorf("error = %v, want success %v", err, tc.wantOK)
			}
		})
	}
}

// status returns a failure that answers with code.
func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { http.Error(w, "failure "+fmt.Sprint(code), code) }
}

// newServer starts a test server closed with the test.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// failTimes fails the first k requests with fail, then calls ok.
func failTimes(k int32, fail func(http.ResponseWriter), n *atomic.Int32, ok http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= k {
			fail(w)
			return
		}
		ok(w, r)
	})
}

// TestRetryAfter checks that Retry-After (seconds or date) and a JSON
// retry_after are waited for, and that a hint is clamped.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fail    func(w http.ResponseWriter)
		policy  cachix.RetryPolicy
		minWait time.Duration
		maxWait time.Duration
	}{
		{name: "seconds", fail: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}, minWait: 900 * time.Millisecond, maxWait: 3 * time.Second},
		{name: "HTTP date", fail: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		}, minWait: 900 * time.Millisecond, maxWait: 3 * time.Second},
		{name: "problem+json retry_after", fail: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `{"title":"origin down","retry_after":1}`)
		}, minWait: 900 * time.Millisecond, maxWait: 3 * time.Second},
		{name: "clamped hint", fail: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		}, policy: cachix.RetryPolicy{MaxHint: 50 * time.Millisecond}, minWait: 40 * time.Millisecond,
			maxWait: time.Second},
		{name: "past date falls back", fail: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT")
			w.WriteHeader(http.StatusServiceUnavailable)
		}, maxWait: 2 * time.Second},
		{name: "zero falls back", fail: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}, maxWait: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := &atomic.Int32{}
			srv := newServer(t, failTimes(1, tc.fail, n, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, cacheInfoJSON("Write", "ZSTD"))
			}))
			policy := cachix.RetryPolicy{Base: time.Millisecond, MaxDelay: 2 * time.Millisecond,
				MaxTotal: 10 * time.Second, MaxHint: tc.policy.MaxHint}
			b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Retry = policy })
			start := time.Now()
			if _, err := b.CacheInfo(t.Context()); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			if elapsed < tc.minWait || elapsed > tc.maxWait {
				t.Errorf("took %v, want between %v and %v", elapsed, tc.minWait, tc.maxWait)
			}
			if got := n.Load(); got != 2 {
				t.Errorf("%d requests, want 2", got)
			}
		})
	}
}

// TestRetryGivesUp checks that retrying stops once the time since the
// first failure would pass the budget, reporting the last status or
// network error.
func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	policy := cachix.RetryPolicy{Base: time.Millisecond, MaxDelay: 4 * time.Millisecond, MaxTotal: 200 * time.Millisecond}
	t.Run("503", func(t *testing.T) {
		t.Parallel()
		srv, n := serve(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream sad", http.StatusServiceUnavailable)
		})
		b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Retry = policy })
		start := time.Now()
		_, err := b.Missing(t.Context(), []string{vectorPath})
		var herr *cachix.HTTPError
		if !errors.As(err, &herr) || herr.StatusCode != 503 {
			t.Fatalf("error %v, want an HTTPError with status 503", err)
		}
		// Each delay is at most 4ms and a loopback request takes a few
		// milliseconds even on a busy machine, so several attempts fit in
		// 200ms; each delay is at least 0.5ms, so at most 401.
		if got := n.Load(); got < 3 || got > 401 || int(got) != herr.Attempts {
			t.Errorf("%d requests (error says %d), want 3–401 and equal", got, herr.Attempts)
		}
		if took := time.Since(start); took < policy.MaxTotal-policy.MaxDelay {
			t.Errorf("gave up after %v, before the %v budget", took, policy.MaxTotal)
		}
		for _, want := range []string{"HTTP 503", "upstream sad", "gave up after"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("took %v", time.Since(start))
		}
	})
	t.Run("dropped connections", func(t *testing.T) {
		t.Parallel()
		srv, n := serve(t, func(w http.ResponseWriter, r *http.Request) { hijackClose(w) })
		b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Retry = policy })
		_, err := b.CacheInfo(t.Context())
		var nerr *cachix.NetworkError
		if !errors.As(err, &nerr) || nerr.Host != strings.TrimPrefix(srv.URL, "http://") {
			t.Fatalf("error %v, want a NetworkError naming the host", err)
		}
		if got := n.Load(); got < 3 || int(got) != nerr.Attempts {
			t.Errorf("%d requests (error says %d), want at least 3 and equal", got, nerr.Attempts)
		}
	})
}

// TestCancelStopsBackoff checks that cancelling the context ends a
// backoff wait at once and is not retried.
func TestCancelStopsBackoff(t *testing.T) {
	t.Parallel()
	srv, n := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	b := newBackend(t, srv.URL, func(o *cachix.Options) {
		o.Retry = cachix.RetryPolicy{Base: 20 * time.Second, MaxDelay: 20 * time.Second, MaxTotal: time.Hour}
	})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := b.CacheInfo(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("cancellation took %v to stop the backoff", elapsed)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
	if !backend.Permanent(err) {
		t.Error("cancellation should be permanent")
	}
}

// TestMissingRefusesNullAndStrangers checks that a bulk answer that is
// not a list of the hashes asked about is an error, not "all present":
// null decoded as an empty list would have counted every path as pushed.
func TestMissingRefusesNullAndStrangers(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`null`, `["00000000000000000000000000000000"]`, `{}`, ``} {
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		})
		b := newBackend(t, srv.URL, nil)
		missing, err := b.Missing(t.Context(), []string{vectorPath})
		if err == nil {
			t.Errorf("answer %q: no error, missing %v", body, missing)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("answer %q: error %q shows the token", body, err)
		}
	}
}

// TestRedirectKeepsToken checks that a redirect to another origin (here
// the same host on another port, as an https → http downgrade would be)
// is refused at once, the token never reaching it, while a redirect
// within the origin is followed.
func TestRedirectKeepsToken(t *testing.T) {
	t.Parallel()
	var leaked atomic.Int32
	other, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "[]")
	})
	srv, n := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	b := newBackend(t, srv.URL, nil)
	_, err := b.Missing(t.Context(), []string{vectorPath})
	if err == nil || !strings.Contains(err.Error(), "auth token is not sent to another origin") {
		t.Fatalf("error %v, want the refused redirect", err)
	}
	if leaked.Load() != 0 {
		t.Errorf("the token reached the other origin %d times", leaked.Load())
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d requests to the host, want 1 (a refused redirect is not retried)", got)
	}

	var hops atomic.Int32
	var same *httptest.Server
	same, _ = serve(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/narinfo") && hops.Add(1) == 1 {
			http.Redirect(w, r, same.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("redirect within the origin lost the token")
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "[]")
	})
	if _, err := newBackend(t, same.URL, nil).Missing(t.Context(), []string{vectorPath}); err != nil {
		t.Errorf("redirect within the origin: %v", err)
	}
}

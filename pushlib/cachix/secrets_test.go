package cachix_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends under the lock.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns everything written.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestTokenNeverLeaks drives failures whose server answers echo the
// Authorization header back, with full trace logging, and checks that the
// token is in no error and no log line, and that presigned URL signatures
// are kept out of the logs.
func TestTokenNeverLeaks(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := zerolog.New(&logs).Level(zerolog.TraceLevel)

	echo := func(w http.ResponseWriter, r *http.Request, code int) {
		http.Error(w, "you sent "+r.Header.Get("Authorization")+" to "+r.URL.String(), code)
	}
	f := newFakeCachix(t)
	f.putHook = func(w http.ResponseWriter, part, attempt int) bool {
		if attempt == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		http.Error(w, "storage says no", http.StatusForbidden)
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix, func(w http.ResponseWriter, r *http.Request) { echo(w, r, 401) })
	mux.HandleFunc("POST "+apiPrefix+"/narinfo", func(w http.ResponseWriter, r *http.Request) { echo(w, r, 500) })
	mux.HandleFunc("POST "+apiPrefix+"/pin", func(w http.ResponseWriter, r *http.Request) { echo(w, r, 400) })
	echoSrv := newServer(t, mux)

	mk := func(url string) *cachix.Backend {
		return newBackend(t, url, func(o *cachix.Options) { o.Logger = &logger })
	}
	var errs []error
	_, err := mk(echoSrv.URL).Open(t.Context())
	errs = append(errs, err)
	_, err = mk(echoSrv.URL).Missing(t.Context(), []string{vectorPath})
	errs = append(errs, err)
	errs = append(errs, mk(echoSrv.URL).CreatePin(t.Context(), backend.Pin{Name: "p", StorePath: vectorPath}))
	info := vectorInfo(t)
	_, err = mk(f.srv.URL).Upload(t.Context(), info, narstream.DefaultCompression,
		fakeStream([]byte("bytes"), info.NarHash, info.NarSize))
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Fatalf("scenario %d succeeded", i)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("scenario %d: error leaks the token: %q", i, err)
		}
		if strings.Contains(err.Error(), "X-Amz-Signature=sig") {
			t.Errorf("scenario %d: error leaks a presigned URL: %q", i, err)
		}
	}
	if !strings.Contains(errs[0].Error(), "you sent Bearer <redacted>") {
		t.Errorf("the server's message was not kept (scrubbed): %q", errs[0])
	}
	out := logs.String()
	if !strings.Contains(out, "retrying request") || !strings.Contains(out, "/api/v1/cache/mycache/narinfo") {
		t.Fatalf("expected the retries to be logged, got:\n%s", out)
	}
	if strings.Contains(out, testToken) {
		t.Errorf("the log leaks the token:\n%s", out)
	}
	if strings.Contains(out, "X-Amz-Signature=sig") {
		t.Errorf("the log leaks a presigned URL:\n%s", out)
	}
	if strings.Contains(out, "Authorization") {
		t.Errorf("the log mentions the Authorization header:\n%s", out)
	}
}

// TestNoTokenNoHeader checks that without a token no Authorization header
// is sent at all (not even an empty Bearer).
func TestNoTokenNoHeader(t *testing.T) {
	t.Parallel()
	var sawHeader bool
	var mu sync.Mutex
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		_, sawHeader = r.Header["Authorization"]
		mu.Unlock()
		writeJSON(w, []string{})
	}))
	b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Token = ""; o.SigningKey = vectorKeyParsed(t) })
	if _, err := b.Missing(t.Context(), []string{vectorPath}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if sawHeader {
		t.Error("an Authorization header was sent without a token")
	}
}

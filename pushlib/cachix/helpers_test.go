package cachix_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// The §10 test vector of the protocol document.
const (
	vectorPath     = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello"
	vectorGlibc    = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"
	vectorNarHash  = "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
	vectorKey      = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA=="
	vectorSig      = "vI1vvDAJb/EngmgGtovdLMc5QX1Sre64TBHSF4SG8uyA+Xr2XExZ/7Ux8xj2GCfm9WI/VT2mXhJSLBwxtQyvAA=="
	vectorNarSize  = 120
	testToken      = "SECRET-token-4b1d-not-for-logs"
	testCache      = "mycache"
	testVersion    = "1.2.3"
	testNarID      = "5f0c7d0e-6a3b-4c3e-9f2a-1b2c3d4e5f60"
	testUploadID   = "opaque/upload+id="
	jsonBodyType   = "application/json;charset=utf-8"
	apiPrefix      = "/api/v1/cache/" + testCache
	storagePattern = "PUT /storage/{narId}/{part}"
)

// vectorInfo is the §10 store path's metadata.
func vectorInfo(t *testing.T) *store.PathInfo {
	t.Helper()
	h, err := nixbase32.DecodeString(vectorNarHash)
	if err != nil {
		t.Fatal(err)
	}
	return &store.PathInfo{Path: vectorPath, NarHash: *nixhash.MustNewHash(nixhash.SHA256, h), NarSize: vectorNarSize,
		References: []string{vectorPath, vectorGlibc}}
}

// vectorKeyParsed is the §10 signing key.
func vectorKeyParsed(t *testing.T) *signing.Key {
	t.Helper()
	k, err := signing.Parse(vectorKey, "test-1")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fastRetry makes retries take milliseconds.
var fastRetry = cachix.RetryPolicy{Base: time.Millisecond, MaxDelay: 4 * time.Millisecond,
	MaxTotal: 40 * time.Millisecond, MaxHint: 5 * time.Second}

// newBackend builds a backend against a test server with fast retries
// and the smallest part size.
func newBackend(t *testing.T, url string, mod func(*cachix.Options)) *cachix.Backend {
	t.Helper()
	opts := cachix.Options{Name: testCache, Host: url + "/", Token: testToken,
		TokenSource: "$CACHIX_AUTH_TOKEN", Version: testVersion, Retry: fastRetry,
		ChunkSize: cachix.MinChunkSize}
	if mod != nil {
		mod(&opts)
	}
	b, err := cachix.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeStream returns a StreamFunc that writes payload in uneven pieces and
// reports the given NAR hash and size with the payload's file hash.
func fakeStream(payload []byte, narHash nixhash.Hash, narSize uint64) backend.StreamFunc {
	return func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		rest := payload
		for i := 0; len(rest) > 0; i++ {
			n := min(len(rest), 1+(i*7919)%300000)
			if _, err := w.Write(rest[:n]); err != nil {
				return narstream.Result{}, err
			}
			rest = rest[n:]
		}
		sum := sha256.Sum256(payload)
		return narstream.Result{NarHash: narHash, NarSize: narSize, FileHash: *nixhash.MustNewHash(nixhash.SHA256, sum[:]),
			FileSize: uint64(len(payload)), Compression: narstream.DefaultCompression}, nil
	}
}

// patterned returns n bytes that differ from part to part.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i/65536)
	}
	return b
}

// recorded is one request the fake server saw.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// fakeCachix is a small Cachix API plus storage for upload tests. Hooks
// inject failures; counters and records let tests check what was sent.
type fakeCachix struct {
	t   *testing.T
	srv *httptest.Server

	creates, presigns, puts, completes, aborts atomic.Int32
	inflight, maxInflight                      atomic.Int32

	// putDelay slows storage PUTs down (concurrency tests).
	putDelay time.Duration
	// putHook may answer a PUT itself (failure injection); it returns true
	// when it did. attempt counts PUTs of that part, from 1.
	putHook func(w http.ResponseWriter, part, attempt int) bool
	// noETag makes storage answer without an ETag.
	noETag bool
	// completeStatus/completeBody replace the completion answer when set.
	completeStatus int
	completeBody   string
	// completeHook may answer a completion itself (failure injection); it
	// returns true when it did. attempt counts completions, from 1.
	completeHook func(w http.ResponseWriter, attempt int) bool
	// present lists the hashes the bulk narinfo query says the cache has.
	present map[string]bool

	mu           sync.Mutex
	records      []recorded
	parts        map[int][]byte
	partAttempts map[int]int
	md5s         map[int]string
	completeReq  []byte
	createQuery  string
	abortQuery   string
}

// newFakeCachix starts the fake server.
func newFakeCachix(t *testing.T) *fakeCachix {
	t.Helper()
	f := &fakeCachix{t: t, parts: map[int][]byte{}, partAttempts: map[int]int{}, md5s: map[int]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar", func(w http.ResponseWriter, r *http.Request) {
		f.creates.Add(1)
		f.mu.Lock()
		f.createQuery = r.URL.RawQuery
		f.mu.Unlock()
		writeJSON(w, map[string]string{"narId": testNarID, "uploadId": testUploadID})
	})
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar/{narId}", func(w http.ResponseWriter, r *http.Request) {
		f.presigns.Add(1)
		var body struct {
			ContentMD5 string `json:"contentMD5"`
		}
		if err := json.Unmarshal(readBody(r), &body); err != nil || body.ContentMD5 == "" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("uploadId") != testUploadID || r.PathValue("narId") != testNarID {
			http.Error(w, "bad ids", http.StatusBadRequest)
			return
		}
		n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
		if err != nil || n < 1 {
			http.Error(w, "bad partNumber", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.md5s[n] = body.ContentMD5
		f.mu.Unlock()
		writeJSON(w, map[string]string{"uploadUrl": fmt.Sprintf("%s/storage/%s/%d?X-Amz-Signature=sig%d",
			f.srv.URL, testNarID, n, n)})
	})
	mux.HandleFunc(storagePattern, func(w http.ResponseWriter, r *http.Request) {
		cur := f.inflight.Add(1)
		defer f.inflight.Add(-1)
		for {
			m := f.maxInflight.Load()
			if cur <= m || f.maxInflight.CompareAndSwap(m, cur) {
				break
			}
		}
		f.puts.Add(1)
		n, _ := strconv.Atoi(r.PathValue("part"))
		f.mu.Lock()
		f.partAttempts[n]++
		attempt := f.partAttempts[n]
		want := f.md5s[n]
		f.mu.Unlock()
		if f.putHook != nil && f.putHook(w, n, attempt) {
			return
		}
		if f.putDelay > 0 {
			select {
			case <-time.After(f.putDelay):
			case <-r.Context().Done():
				return
			}
		}
		body := readBody(r)
		sum := md5.Sum(body)
		if got := base64.StdEncoding.EncodeToString(sum[:]); r.Header.Get("Content-MD5") != got || got != want {
			http.Error(w, "<Error><Code>BadDigest</Code></Error>", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Content-Type") != "application/octet-stream" {
			http.Error(w, "bad content type", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.parts[n] = body
		f.mu.Unlock()
		if !f.noETag {
			w.Header().Set("ETag", fmt.Sprintf("\"etag-%d\"", n))
		}
	})
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar/{narId}/complete", func(w http.ResponseWriter, r *http.Request) {
		attempt := f.completes.Add(1)
		f.mu.Lock()
		f.completeReq = readBody(r)
		f.mu.Unlock()
		if f.completeHook != nil && f.completeHook(w, int(attempt)) {
			return
		}
		if f.completeStatus != 0 {
			w.Header().Set("Content-Type", "application/json;charset=utf-8")
			w.WriteHeader(f.completeStatus)
			_, _ = io.WriteString(w, f.completeBody)
		}
	})
	mux.HandleFunc("POST "+apiPrefix+"/narinfo", func(w http.ResponseWriter, r *http.Request) {
		var asked []string
		if err := json.Unmarshal(readBody(r), &asked); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		missing := []string{}
		f.mu.Lock()
		for _, h := range asked {
			if !f.present[h] {
				missing = append(missing, h)
			}
		}
		f.mu.Unlock()
		writeJSON(w, missing)
	})
	mux.HandleFunc("POST "+apiPrefix+"/multipart-nar/{narId}/abort", func(w http.ResponseWriter, r *http.Request) {
		f.aborts.Add(1)
		f.mu.Lock()
		f.abortQuery = r.URL.RawQuery
		f.mu.Unlock()
	})
	f.srv = httptest.NewServer(f.record(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// record keeps every request (with its body) before handling it.
func (f *fakeCachix) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.records = append(f.records, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// readBody returns a request's body (record has already buffered it).
func readBody(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}

// requests returns the recorded requests matching method and path prefix.
func (f *fakeCachix) requests(method, pathPrefix string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.records {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// hijackClose drops the connection without answering.
func hijackClose(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

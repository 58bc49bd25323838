package cachix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got (JSON) with testdata/name after indenting, keeping
// the field order exactly as sent.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("invalid JSON sent: %v\n%s", err, got)
	}
	buf.WriteByte('\n')
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, buf.Bytes(), want)
	}
}

// TestCompleteBodyGolden checks the completion request, narInfoCreate
// included, against the §10 test vector, byte for byte.
func TestCompleteBodyGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		signed      bool
		deriver     string
		omitDeriver bool
		golden      string
	}{
		{name: "signed", signed: true, golden: "complete-signed.json"},
		{name: "managed with deriver", deriver: "/nix/store/ffffffffffffffffffffffffffffffff-hello.drv",
			golden: "complete-managed.json"},
		{name: "omit deriver", signed: true, deriver: "/nix/store/ffffffffffffffffffffffffffffffff-hello.drv",
			omitDeriver: true, golden: "complete-signed.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCachix(t)
			b := newBackend(t, f.srv.URL, func(o *cachix.Options) {
				if tc.signed {
					o.SigningKey = vectorKeyParsed(t)
				}
				o.OmitDeriver = tc.omitDeriver
			})
			info := vectorInfo(t)
			info.Deriver = tc.deriver
			payload := []byte("compressed-hello")
			p, err := b.Upload(t.Context(), info, narstream.DefaultCompression,
				fakeStream(payload, info.NarHash, info.NarSize))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, f.completeReq)

			var sent struct {
				NarInfoCreate map[string]json.RawMessage `json:"narInfoCreate"`
			}
			if err := json.Unmarshal(f.completeReq, &sent); err != nil {
				t.Fatal(err)
			}
			wantSig := "null"
			if tc.signed {
				wantSig = `"` + vectorSig + `"`
			}
			if got := string(sent.NarInfoCreate["cSig"]); got != wantSig {
				t.Errorf("cSig = %s, want %s", got, wantSig)
			}
			if got := f.requests(http.MethodPost, apiPrefix+"/multipart-nar/"+testNarID+"/complete"); len(got) != 1 ||
				got[0].Query != "uploadId=opaque%2Fupload%2Bid%3D" {
				t.Errorf("complete requests = %+v, want one with the escaped uploadId", got)
			}
		})
	}
}

// TestMultipartCutting checks that the compressed stream is cut into
// consecutive parts of the chunk size, with no empty trailing part, that
// each part carries its MD5 and that the parts are listed in order.
func TestMultipartCutting(t *testing.T) {
	t.Parallel()
	const chunk = cachix.MinChunkSize
	tests := []struct {
		name      string
		size      int
		wantSizes []int
	}{
		{name: "one byte", size: 1, wantSizes: []int{1}},
		{name: "just under a part", size: chunk - 1, wantSizes: []int{chunk - 1}},
		{name: "exactly one part", size: chunk, wantSizes: []int{chunk}},
		{name: "exactly three parts", size: 3 * chunk, wantSizes: []int{chunk, chunk, chunk}},
		{name: "one byte over", size: 2*chunk + 1, wantSizes: []int{chunk, chunk, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCachix(t)
			b := newBackend(t, f.srv.URL, func(o *cachix.Options) { o.ChunkSize = 1 }) // raised to 5 MiB
			payload := patterned(tc.size)
			info := vectorInfo(t)
			p, err := b.Upload(t.Context(), info, narstream.DefaultCompression,
				fakeStream(payload, info.NarHash, info.NarSize))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := int(f.puts.Load()); got != len(tc.wantSizes) {
				t.Fatalf("%d PUTs, want %d", got, len(tc.wantSizes))
			}
			var joined []byte
			for i, want := range tc.wantSizes {
				part := f.parts[i+1]
				if len(part) != want {
					t.Errorf("part %d has %d bytes, want %d", i+1, len(part), want)
				}
				joined = append(joined, part...)
			}
			if !bytes.Equal(joined, payload) {
				t.Error("the parts do not add up to the stream")
			}
			var sent struct {
				Parts []struct {
					PartNumber int    `json:"partNumber"`
					ETag       string `json:"eTag"`
				} `json:"parts"`
			}
			if err := json.Unmarshal(f.completeReq, &sent); err != nil {
				t.Fatal(err)
			}
			for i, part := range sent.Parts {
				if part.PartNumber != i+1 || part.ETag != `"etag-`+string(rune('0'+i+1))+`"` {
					t.Errorf("parts[%d] = %+v, want number %d with its quoted ETag", i, part, i+1)
				}
			}
			if len(sent.Parts) != len(tc.wantSizes) {
				t.Errorf("complete lists %d parts, want %d", len(sent.Parts), len(tc.wantSizes))
			}
			if q := f.createQuery; q != "compression=zst" {
				t.Errorf("create query = %q, want compression=zst", q)
			}
			if n := cachix.BuffersInUse(b); n != 0 {
				t.Errorf("%d part buffers still held after the upload", n)
			}
		})
	}
}

// TestConcurrencyBound checks that at most ConcurrentChunks parts are in
// flight and at most ConcurrentChunks+1 buffers are held.
func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	f.putDelay = 200 * time.Millisecond
	b := newBackend(t, f.srv.URL, func(o *cachix.Options) { o.ConcurrentChunks = 2 })
	payload := patterned(7*cachix.MinChunkSize + 10)
	info := vectorInfo(t)
	if _, err := b.Upload(t.Context(), info, narstream.DefaultCompression,
		fakeStream(payload, info.NarHash, info.NarSize)); err != nil {
		t.Fatal(err)
	}
	if got := f.maxInflight.Load(); got != 2 {
		t.Errorf("at most %d parts were in flight, want exactly 2", got)
	}
	if got := cachix.BufferPeak(b); got > 3 {
		t.Errorf("%d part buffers were held at once, want at most 3", got)
	}
	if got := f.puts.Load(); got != 8 {
		t.Errorf("%d PUTs, want 8", got)
	}
}

// TestBufferBudget: uploads running at once share the buffer budget (here
// two parts): never more part buffers are held than it allows, and every
// upload completes.
func TestBufferBudget(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	f.putDelay = 50 * time.Millisecond
	b := newBackend(t, f.srv.URL, func(o *cachix.Options) { o.BufferBudget = 2 * cachix.MinChunkSize })
	payload := patterned(3*cachix.MinChunkSize + 10)
	info := vectorInfo(t)
	info.NarSize = uint64(len(payload)) // every buffer a whole part
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := b.Upload(t.Context(), info, narstream.DefaultCompression,
				fakeStream(payload, info.NarHash, info.NarSize)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := cachix.BufferPeak(b); got > 2 {
		t.Errorf("%d part buffers were held at once, want at most 2", got)
	}
	if got := f.puts.Load(); got != 12 {
		t.Errorf("%d PUTs, want 12", got)
	}
	if n := cachix.BuffersInUse(b); n != 0 {
		t.Errorf("%d part buffers still held after the uploads", n)
	}
}

// TestUploadRequests checks the headers of every request of an upload:
// User-Agent everywhere, the bearer token only to the API, JSON bodies
// with the Servant content type, no Authorization to storage.
func TestUploadRequests(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	b := newBackend(t, f.srv.URL, nil)
	info := vectorInfo(t)
	p, err := b.Upload(t.Context(), info, narstream.Compression{Method: narstream.XZ, Level: 2},
		fakeStream([]byte("xz bytes"), info.NarHash, info.NarSize))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.createQuery != "compression=xz" {
		t.Errorf("create query = %q, want compression=xz", f.createQuery)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.records {
		if ua := r.Header.Get("User-Agent"); ua != "cachix-select/"+testVersion {
			t.Errorf("%s %s: User-Agent %q", r.Method, r.Path, ua)
		}
		auth := r.Header.Get("Authorization")
		if strings.HasPrefix(r.Path, "/storage/") {
			if auth != "" {
				t.Errorf("storage PUT carries Authorization")
			}
			continue
		}
		if auth != "Bearer "+testToken {
			t.Errorf("%s %s: Authorization header missing or wrong", r.Method, r.Path)
		}
		ct := r.Header.Get("Content-Type")
		switch {
		case len(r.Body) > 0 && ct != jsonBodyType:
			t.Errorf("%s %s: Content-Type %q, want %q", r.Method, r.Path, ct, jsonBodyType)
		case len(r.Body) == 0 && r.Method == http.MethodPost && !strings.HasSuffix(r.Path, "/multipart-nar"):
			t.Errorf("%s %s: empty body", r.Method, r.Path)
		}
	}
}

// TestUploadFailuresAbort checks that a failure after the upload was
// created aborts it and is returned, and that nothing is completed.
func TestUploadFailuresAbort(t *testing.T) {
	t.Parallel()
	streamErr := errors.New("disk on fire")
	tests := []struct {
		name    string
		setup   func(f *fakeCachix)
		stream  func(info *narstreamInfo) backend.StreamFunc
		wantIs  error
		wantMsg string
		maxPUTs int32
	}{
		{
			name: "storage rejects part 2",
			setup: func(f *fakeCachix) {
				f.putHook = func(w http.ResponseWriter, part, _ int) bool {
					if part == 2 {
						http.Error(w, "<Error><Code>AccessDenied</Code></Error>", http.StatusForbidden)
						return true
					}
					return false
				}
			},
			wantMsg: "uploading part 2 of " + vectorPath,
			maxPUTs: 4,
		},
		{
			name:    "storage answers without ETag",
			setup:   func(f *fakeCachix) { f.noETag = true },
			wantMsg: "without an ETag",
			maxPUTs: 4,
		},
		{
			name: "the stream fails",
			stream: func(n *narstreamInfo) backend.StreamFunc {
				return func(ctx context.Context, w io.Writer) (narstream.Result, error) {
					_, _ = w.Write(patterned(cachix.MinChunkSize + 5))
					return narstream.Result{}, streamErr
				}
			},
			wantIs:  streamErr,
			maxPUTs: 1,
		},
		{
			name: "the NAR does not match the database",
			stream: func(n *narstreamInfo) backend.StreamFunc {
				other := append([]byte(nil), n.hash.Digest()...)
				other[0] ^= 1
				return fakeStream([]byte("x"), *nixhash.MustNewHash(nixhash.SHA256, other), n.size)
			},
			wantIs:  narstream.ErrHashMismatch,
			maxPUTs: 1,
		},
		{
			name: "the compressed NAR is empty",
			stream: func(n *narstreamInfo) backend.StreamFunc {
				return fakeStream(nil, n.hash, n.size)
			},
			wantMsg: "compressed NAR is empty",
			maxPUTs: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCachix(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			b := newBackend(t, f.srv.URL, nil)
			info := vectorInfo(t)
			stream := fakeStream(patterned(3*cachix.MinChunkSize), info.NarHash, info.NarSize)
			if tc.stream != nil {
				stream = tc.stream(&narstreamInfo{hash: info.NarHash, size: info.NarSize})
			}
			p, err := b.Upload(t.Context(), info, narstream.DefaultCompression, stream)
			if err == nil {
				t.Fatalf("Upload succeeded (pending %v), want an error", p)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
			if got := f.aborts.Load(); got != 1 {
				t.Errorf("%d aborts, want 1", got)
			}
			if f.abortQuery != "uploadId=opaque%2Fupload%2Bid%3D" {
				t.Errorf("abort query = %q", f.abortQuery)
			}
			if got := f.completes.Load(); got != 0 {
				t.Errorf("%d completions, want none", got)
			}
			if got := f.puts.Load(); got > tc.maxPUTs {
				t.Errorf("%d PUTs, want at most %d", got, tc.maxPUTs)
			}
			if n := cachix.BuffersInUse(b); n != 0 {
				t.Errorf("%d part buffers still held after the failure", n)
			}
		})
	}
}

// narstreamInfo carries the vector's hash and size into table entries.
type narstreamInfo struct {
	hash nixhash.Hash
	size uint64
}

// TestExpiredPresignRenewed: a storage PUT answered 403 (the presigned
// URL expired while the part waited or was retried) is sent once more
// with a fresh URL; a second 403 is final (TestUploadFailuresAbort).
func TestExpiredPresignRenewed(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	f.putHook = func(w http.ResponseWriter, part, attempt int) bool {
		if part == 1 && attempt == 1 {
			http.Error(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", http.StatusForbidden)
			return true
		}
		return false
	}
	payload := uploadTwoParts(t, f)
	if got := f.presigns.Load(); got != 3 {
		t.Errorf("%d presign calls, want 3 (part 1 twice, part 2 once)", got)
	}
	if got := f.puts.Load(); got != 3 {
		t.Errorf("%d PUTs, want 3", got)
	}
	if !bytes.Equal(append(append([]byte(nil), f.parts[1]...), f.parts[2]...), payload) {
		t.Error("the parts differ from the stream")
	}
}

// uploadTwoParts uploads and commits a NAR of two parts to f, and
// returns the bytes uploaded.
func uploadTwoParts(t *testing.T, f *fakeCachix) []byte {
	t.Helper()
	b := newBackend(t, f.srv.URL, nil)
	payload := patterned(cachix.MinChunkSize + 77)
	info := vectorInfo(t)
	p, err := b.Upload(t.Context(), info, narstream.DefaultCompression, fakeStream(payload, info.NarHash, info.NarSize))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if err := p.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	return payload
}

// TestPartRetriedFromBuffer checks that a part whose PUT fails with a 503
// or a dropped connection is sent again, byte for byte, from its buffer.
func TestPartRetriedFromBuffer(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	f.putHook = func(w http.ResponseWriter, part, attempt int) bool {
		switch {
		case part == 1 && attempt == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case part == 2 && attempt == 1:
			hijackClose(w)
			return true
		}
		return false
	}
	payload := uploadTwoParts(t, f)
	if got := f.puts.Load(); got != 4 {
		t.Errorf("%d PUTs, want 4 (two parts, each retried once)", got)
	}
	if !bytes.Equal(append(append([]byte(nil), f.parts[1]...), f.parts[2]...), payload) {
		t.Error("retried parts differ from the stream")
	}
	if got := f.presigns.Load(); got != 2 {
		t.Errorf("%d presign calls, want 2 (a retried PUT reuses its URL)", got)
	}
}

// TestCommitRejected checks the mapping of a 400 on completion.
func TestCommitRejected(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	f.completeStatus = http.StatusBadRequest
	f.completeBody = `{"error":"No public key set yet. Run 'cachix generate-keypair' first."}`
	b := newBackend(t, f.srv.URL, nil)
	info := vectorInfo(t)
	p, err := b.Upload(t.Context(), info, narstream.DefaultCompression, fakeStream([]byte("z"), info.NarHash, info.NarSize))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Commit(t.Context())
	if !errors.Is(err, backend.ErrRejected) {
		t.Fatalf("Commit error %v is not ErrRejected", err)
	}
	for _, want := range []string{vectorPath, testCache, "400", "No public key set yet"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !backend.Permanent(err) {
		t.Error("a rejected commit should be permanent")
	}
	if got := f.completes.Load(); got != 1 {
		t.Errorf("%d completion attempts, want 1 (400 is not retried)", got)
	}
}

// TestCommitAnswerLost: the completion went through but its answer was
// lost (the connection dropped), and the retry is refused because the
// upload is done ("No such upload"). The narinfo exists, so the push
// succeeded; when it does not, the refusal stands.
func TestCommitAnswerLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		committed bool
	}{{"committed", true}, {"not committed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCachix(t)
			info := vectorInfo(t)
			f.completeHook = func(w http.ResponseWriter, attempt int) bool {
				if attempt == 1 {
					if tc.committed {
						f.mu.Lock()
						f.present = map[string]bool{vectorPath[len("/nix/store/"):][:32]: true}
						f.mu.Unlock()
					}
					hijackClose(w)
					return true
				}
				w.Header().Set("Content-Type", "application/json;charset=utf-8")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"No such upload"}`)
				return true
			}
			b := newBackend(t, f.srv.URL, nil)
			p, err := b.Upload(t.Context(), info, narstream.DefaultCompression, fakeStream([]byte("z"), info.NarHash, info.NarSize))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Commit(t.Context())
			if got := f.completes.Load(); got != 2 {
				t.Errorf("%d completion attempts, want 2 (the dropped one retried)", got)
			}
			if tc.committed && err != nil {
				t.Errorf("the narinfo exists after a lost answer, yet Commit failed: %v", err)
			}
			if !tc.committed && !errors.Is(err, backend.ErrRejected) {
				t.Errorf("nothing was created, yet Commit returned %v, want ErrRejected", err)
			}
			if n := len(f.requests(http.MethodPost, apiPrefix+"/narinfo")); n != 1 {
				t.Errorf("%d presence checks, want 1", n)
			}
		})
	}
}

// TestDiscardAborts checks that Discard aborts an uncommitted upload once,
// and that Commit after Discard fails.
func TestDiscardAborts(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	b := newBackend(t, f.srv.URL, nil)
	info := vectorInfo(t)
	p, err := b.Upload(t.Context(), info, narstream.DefaultCompression, fakeStream([]byte("z"), info.NarHash, info.NarSize))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Result().FileSize; got != 1 {
		t.Errorf("Result().FileSize = %d, want 1", got)
	}
	if err := p.Discard(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Discard(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.aborts.Load(); got != 1 {
		t.Errorf("%d aborts, want 1", got)
	}
	if err := p.Commit(t.Context()); err == nil {
		t.Error("Commit after Discard succeeded")
	}
	if got := f.completes.Load(); got != 0 {
		t.Errorf("%d completions, want none", got)
	}
}

// TestUploadRefusesBadInput checks local refusals that happen before any request.
func TestUploadRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mod    func(info *store.PathInfo)
		c      narstream.Compression
		wantIs error
	}{
		{name: "other store dir", mod: func(i *store.PathInfo) { i.Path = "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello" },
			c: narstream.DefaultCompression, wantIs: backend.ErrNotSupported},
		{name: "reference in another store dir", mod: func(i *store.PathInfo) {
			i.References = []string{"/opt/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"}
		}, c: narstream.DefaultCompression, wantIs: backend.ErrNotSupported},
		{name: "no compression", c: narstream.Compression{Method: narstream.None}, wantIs: backend.ErrNotSupported},
		{name: "zero NAR size", mod: func(i *store.PathInfo) { i.NarSize = 0 }, c: narstream.DefaultCompression},
		{name: "not a store path", mod: func(i *store.PathInfo) { i.Path = "/nix/store/hello" },
			c: narstream.DefaultCompression},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCachix(t)
			b := newBackend(t, f.srv.URL, nil)
			info := vectorInfo(t)
			if tc.mod != nil {
				tc.mod(info)
			}
			_, err := b.Upload(t.Context(), info, tc.c, fakeStream([]byte("z"), info.NarHash, info.NarSize))
			if err == nil {
				t.Fatal("Upload succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", err, tc.wantIs)
			}
			if got := f.creates.Load(); got != 0 {
				t.Errorf("%d uploads created, want none", got)
			}
		})
	}
}

// TestUploadCancelled checks that cancelling the context stops an upload
// promptly, reports the cancellation and still aborts the upload.
func TestUploadCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeCachix(t)
	f.putDelay = 2 * time.Second
	b := newBackend(t, f.srv.URL, nil)
	info := vectorInfo(t)
	ctx, cancel := context.WithCancel(t.Context())
	var cancelledAt atomic.Int64
	f.putHook = func(http.ResponseWriter, int, int) bool {
		cancelledAt.CompareAndSwap(0, time.Now().UnixNano())
		cancel() // while the first part is in flight
		return false
	}
	_, err := b.Upload(ctx, info, narstream.DefaultCompression,
		fakeStream(patterned(3*cachix.MinChunkSize), info.NarHash, info.NarSize))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v is not context.Canceled", err)
	}
	if elapsed := time.Since(time.Unix(0, cancelledAt.Load())); elapsed > 1500*time.Millisecond {
		t.Errorf("cancellation took %v", elapsed)
	}
	if got := f.aborts.Load(); got != 1 {
		t.Errorf("%d aborts, want 1 (abort runs even after cancellation)", got)
	}
	if got := f.completes.Load(); got != 0 {
		t.Errorf("%d completions, want none", got)
	}
}

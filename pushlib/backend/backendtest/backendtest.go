// Package backendtest is the contract every backend.Backend keeps, written
// once as tests that each backend runs against a fresh cache of its own
// kind (the model is restic's backend test suite): the file cache, the S3
// cache over a real MinIO, the Cachix backend over the strict Cachix test
// server, and the fake the pipeline's tests use. A new backend passes the
// Suite before the pipeline is pointed at it.
//
// The contract, as backend's doc comments state it: Open may be called on
// a fresh cache and again; Missing reports every path the cache has no
// narinfo for; Upload stores a NAR without making it visible, and calls the
// StreamFunc again on a retry; a failing stream fails the upload with the
// stream's error (a corrupt NAR's permanently) and leaves nothing visible;
// Commit makes the path present; Discard leaves it missing; several
// uploads may run at once.
package backendtest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Suite runs the contract against one kind of backend.
type Suite struct {
	// New returns the backend of a fresh, empty cache; it may skip t (a
	// test server that is not built).
	New func(t *testing.T) backend.Backend
	// Compression is what NARs are stored with (default zstd level 2).
	Compression narstream.Compression
}

// Run runs every contract test as a parallel subtest of t.
func (s Suite) Run(t *testing.T) {
	if s.Compression.Method == "" {
		s.Compression = narstream.DefaultCompression
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s Suite, b backend.Backend)
	}{
		{"OpenTwice", testOpenTwice},
		{"EmptyCacheLacksEverything", testEmpty},
		{"NothingVisibleBeforeCommit", testCommit},
		{"ReferencesAndDeriver", testReferences},
		{"DiscardLeavesItMissing", testDiscard},
		{"FailingStreamIsPassedOn", testFailingStream},
		{"CorruptNARIsPermanent", testCorrupt},
		{"ConcurrentUploads", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := s.New(t)
			if _, err := b.Open(t.Context()); err != nil {
				t.Fatalf("Open: %v", err)
			}
			tt.run(t, s, b)
		})
	}
}

// Path is a store path of the tests: its metadata says /nix/store (what
// every backend accepts; Cachix holds nothing else), its contents are a
// directory of the test's.
type Path struct {
	Info *store.PathInfo
	// Dir holds the contents the NAR is made of.
	Dir string
}

// NewPath makes a path named name with about size bytes of contents
// unique to the test, referring to refs (and itself when self).
func NewPath(t *testing.T, name string, size int, self bool, refs ...Path) Path {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	content := make([]byte, size)
	seed := sha256.Sum256([]byte(t.Name() + "/" + name))
	for i := range content {
		content[i] = "abcdefghij\n"[int(seed[i%32]+byte(i/7))%11]
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", name), content, 0o755); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n := &counter{w: h}
	if err := nar.DumpPath(n, dir); err != nil {
		t.Fatal(err)
	}
	p := "/nix/store/" + nixbase32.EncodeToString(seed[:20]) + "-" + name
	info := &store.PathInfo{Path: p, NarHash: *nixhash.MustNewHash(nixhash.SHA256, h.Sum(nil)), NarSize: n.n,
		Deriver: "/nix/store/" + nixbase32.EncodeToString(seed[12:32]) + "-" + name + ".drv"}
	for _, r := range refs {
		info.References = append(info.References, r.Info.Path)
	}
	if self {
		info.References = append(info.References, p)
	}
	return Path{Info: info, Dir: dir}
}

// counter counts what passes through.
type counter struct {
	w io.Writer
	n uint64
}

func (c *counter) Write(b []byte) (int, error) { c.n += uint64(len(b)); return c.w.Write(b) }

// Stream is the StreamFunc of p: the NAR of its directory through
// narstream, checked against p's metadata.
func (p Path) Stream(c narstream.Compression) backend.StreamFunc {
	local := *p.Info
	local.Path = p.Dir
	return func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		return narstream.Stream(ctx, &local, c, w, nil)
	}
}

// push uploads and commits p.
func (s Suite) push(t *testing.T, b backend.Backend, p Path) narstream.Result {
	t.Helper()
	pending, err := b.Upload(t.Context(), p.Info, s.Compression, p.Stream(s.Compression))
	if err != nil {
		t.Fatalf("Upload %s: %v", p.Info.Path, err)
	}
	if err := pending.Commit(t.Context()); err != nil {
		t.Fatalf("Commit %s: %v", p.Info.Path, err)
	}
	return pending.Result()
}

// missing asks the backend about ps and returns which are missing, in order.
func missing(t *testing.T, b backend.Backend, ps ...Path) []bool {
	t.Helper()
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Info.Path)
	}
	m, err := b.Missing(t.Context(), paths)
	if err != nil {
		t.Fatalf("Missing: %v", err)
	}
	out := make([]bool, len(ps))
	for i, p := range paths {
		out[i] = m[p]
	}
	return out
}

func testOpenTwice(t *testing.T, _ Suite, b backend.Backend) {
	if _, err := b.Open(t.Context()); err != nil {
		t.Fatalf("a second Open: %v", err)
	}
	if b.String() == "" {
		t.Error("String() is empty: messages could not name the cache")
	}
}

func testEmpty(t *testing.T, _ Suite, b backend.Backend) {
	a, c := NewPath(t, "a", 100, false), NewPath(t, "c", 100, true)
	if got := missing(t, b, a, c); !got[0] || !got[1] {
		t.Errorf("a fresh cache has %v", got)
	}
	if m, err := b.Missing(t.Context(), nil); err != nil || len(m) != 0 {
		t.Errorf("Missing(nil) = %v, %v", m, err)
	}
}

func testCommit(t *testing.T, s Suite, b backend.Backend) {
	p := NewPath(t, "hello", 70_000, true)
	pending, err := b.Upload(t.Context(), p.Info, s.Compression, p.Stream(s.Compression))
	if err != nil {
		t.Fatal(err)
	}
	if !missing(t, b, p)[0] {
		t.Fatal("a path is present before its narinfo was committed")
	}
	res := pending.Result()
	if res.NarSize != p.Info.NarSize || res.FileSize == 0 || string(res.NarHash.Digest()) != string(p.Info.NarHash.Digest()) {
		t.Errorf("Result = NAR %d bytes, file %d bytes; want NAR %d and a file", res.NarSize, res.FileSize, p.Info.NarSize)
	}
	if err := pending.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if missing(t, b, p)[0] {
		t.Error("a committed path is missing")
	}
}

func testReferences(t *testing.T, s Suite, b backend.Backend) {
	lib := NewPath(t, "lib", 5000, true)
	app := NewPath(t, "app", 5000, true, lib)
	other := NewPath(t, "other", 10, false)
	s.push(t, b, lib)
	s.push(t, b, app)
	if got := missing(t, b, lib, app, other); got[0] || got[1] || !got[2] {
		t.Errorf("missing = %v, want only the path never pushed", got)
	}
}

func testDiscard(t *testing.T, s Suite, b backend.Backend) {
	p := NewPath(t, "discarded", 1000, false)
	pending, err := b.Upload(t.Context(), p.Info, s.Compression, p.Stream(s.Compression))
	if err != nil {
		t.Fatal(err)
	}
	if err := pending.Discard(t.Context()); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	if !missing(t, b, p)[0] {
		t.Fatal("a discarded upload is visible")
	}
	s.push(t, b, p) // and can be pushed after all
	if missing(t, b, p)[0] {
		t.Error("the path pushed after a discard is missing")
	}
}

// errDiskOnFire is a stream's own failure, one a retry may fix.
var errDiskOnFire = errors.New("simulated read error")

func testFailingStream(t *testing.T, s Suite, b backend.Backend) {
	p := NewPath(t, "flaky", 100_000, false)
	calls := 0
	failing := func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		calls++
		if _, err := w.Write(make([]byte, 4096)); err != nil {
			return narstream.Result{}, err
		}
		return narstream.Result{}, errDiskOnFire
	}
	_, err := b.Upload(t.Context(), p.Info, s.Compression, failing)
	if !errors.Is(err, errDiskOnFire) || backend.Permanent(err) {
		t.Fatalf("Upload with a failing stream = %v; want the stream's error, not permanent", err)
	}
	if !missing(t, b, p)[0] {
		t.Fatal("a failed upload is visible")
	}
	// The retry the pipeline makes: the stream is called again, from the start.
	s.push(t, b, p)
	if calls != 1 || missing(t, b, p)[0] {
		t.Errorf("after a retry: %d failing calls, missing %v", calls, missing(t, b, p))
	}
}

func testCorrupt(t *testing.T, s Suite, b backend.Backend) {
	p := NewPath(t, "corrupt", 3000, false)
	wrong := append([]byte(nil), p.Info.NarHash.Digest()...)
	wrong[0] ^= 0xff
	p.Info.NarHash = *nixhash.MustNewHash(nixhash.SHA256, wrong) // the database disagrees with the disk
	_, err := b.Upload(t.Context(), p.Info, s.Compression, p.Stream(s.Compression))
	if !errors.Is(err, narstream.ErrHashMismatch) || !backend.Permanent(err) {
		t.Fatalf("Upload of a corrupt path = %v; want a permanent ErrHashMismatch", err)
	}
	if !missing(t, b, p)[0] {
		t.Error("a corrupt path is visible")
	}
}

func testConcurrent(t *testing.T, s Suite, b backend.Backend) {
	var ps []Path
	for i := range 6 {
		ps = append(ps, NewPath(t, fmt.Sprintf("p%d", i), 20_000*(i+1), i%2 == 0))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() {
			pending, err := b.Upload(t.Context(), p.Info, s.Compression, p.Stream(s.Compression))
			if err == nil {
				err = pending.Commit(t.Context())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", ps[i].Info.Path, err)
		}
	}
	for i, m := range missing(t, b, ps...) {
		if m {
			t.Errorf("%s is missing after a concurrent push", ps[i].Info.Path)
		}
	}
}

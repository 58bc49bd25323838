package filecache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/filecache"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// vector is the path info of cachix-protocol.md §10.
func vector(t *testing.T) (*store.PathInfo, narstream.Result) {
	t.Helper()
	h, err := nixhash.ParseAny("sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw", nil)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := nixhash.ParseAny("sha256:b15a2f05341dde62a95853fecbe00bf60664b0c695481e9f57570ca4a3942c53", nil)
	if err != nil {
		t.Fatal(err)
	}
	info := &store.PathInfo{
		Path: "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello", NarHash: h.Hash, NarSize: 120,
		References: []string{"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello", "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"},
		Deriver:    "/nix/store/00000000000000000000000000000000-hello.drv",
	}
	return info, narstream.Result{NarHash: h.Hash, NarSize: 120, FileHash: fh.Hash, FileSize: 97, Compression: narstream.DefaultCompression}
}

// openCache opens a new file cache (unsynced) in a temporary directory.
func openCache(t *testing.T) (*filecache.Cache, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := filecache.New(filecache.Options{URL: "file://" + dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func TestNarinfoGolden(t *testing.T) {
	t.Parallel()
	key, err := signing.Parse("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA==", "test-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts filecache.Options
	}{
		{"signed", filecache.Options{URL: "file:///srv/c", SigningKey: key}},
		{"unsigned-omit-deriver", filecache.Options{URL: "file:///srv/c", OmitDeriver: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := filecache.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			info, res := vector(t)
			got, err := c.Narinfo(info, res, "nar/"+res.FileHashHex()+".nar.zst")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".narinfo")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("narinfo differs from %s:\n%s", golden, got)
			}
			// What we write is what go-nix's parser (an independent reader) understands.
			ni, err := narinfo.Parse(strings.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if ni.NarSize != 120 || len(ni.References) != 2 {
				t.Errorf("parsed back: %+v", ni)
			}
		})
	}
}

func TestUploadCommitAtomic(t *testing.T) {
	t.Parallel()
	c, dir := openCache(t)
	ctx := context.Background()
	info, res := vector(t)
	missing, err := c.Missing(ctx, []string{info.Path})
	if err != nil || !missing[info.Path] {
		t.Fatalf("Missing = %v, %v", missing, err)
	}
	// A failing stream leaves nothing behind.
	_, err = c.Upload(ctx, info, narstream.DefaultCompression, func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		_, _ = w.Write([]byte("partial"))
		return narstream.Result{}, errors.New("boom")
	})
	if err == nil {
		t.Fatal("want the stream's error")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "nar")); len(entries) != 0 {
		t.Fatalf("a failed upload left %d files in nar/", len(entries))
	}
	p, err := c.Upload(ctx, info, narstream.DefaultCompression, func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		_, err := io.Copy(w, bytes.NewReader(make([]byte, 97)))
		return res, err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Uploaded but not committed: invisible to substituters.
	if missing, _ := c.Missing(ctx, []string{info.Path}); !missing[info.Path] {
		t.Fatal("narinfo visible before Commit")
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if missing, _ := c.Missing(ctx, []string{info.Path}); missing[info.Path] {
		t.Fatal("narinfo missing after Commit")
	}
	if _, err := os.Stat(filepath.Join(dir, "nar", res.FileHashHex()+".nar.zst")); err != nil {
		t.Fatal(err)
	}
}

// TestSyncedPushAndEmptyNarinfo: with syncing on (syncfs before the
// narinfo, and in Flush), Commit and Flush succeed; a narinfo that a power
// loss left empty counts as missing, so the next push writes it again.
func TestSyncedPushAndEmptyNarinfo(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := filecache.New(filecache.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	info, res := vector(t)
	p, err := c.Upload(ctx, info, narstream.DefaultCompression, func(ctx context.Context, w io.Writer) (narstream.Result, error) {
		_, err := io.Copy(w, bytes.NewReader(make([]byte, 97)))
		return res, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if missing, _ := c.Missing(ctx, []string{info.Path}); missing[info.Path] {
		t.Fatal("narinfo missing after Commit")
	}
	narinfo := filepath.Join(dir, strings.TrimPrefix(info.Path, "/nix/store/")[:32]+".narinfo")
	if err := os.Truncate(narinfo, 0); err != nil {
		t.Fatal(err)
	}
	if missing, _ := c.Missing(ctx, []string{info.Path}); !missing[info.Path] {
		t.Fatal("an empty narinfo counts as present")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	for _, tt := range []struct{ name, url string }{
		{"missing parent", "file://" + tmp + "/no/such/dir"},
		{"relative", "file://relative/dir"},
		{"query", "file://" + tmp + "/c?compression=xz"},
		{"not file", "https://example.org"},
	} {
		c, err := filecache.New(filecache.Options{URL: tt.url})
		if err == nil {
			_, err = c.Open(context.Background())
		}
		if !errors.Is(err, filecache.ErrBadLocation) {
			t.Errorf("%s: got %v, want ErrBadLocation", tt.name, err)
		}
	}
	// A cache for another store directory is refused.
	dir := filepath.Join(tmp, "other")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "nix-cache-info"), []byte("StoreDir: /gnu/store\n"), 0o644)
	c, _ := filecache.New(filecache.Options{URL: "file://" + dir})
	if _, err := c.Open(context.Background()); !errors.Is(err, filecache.ErrBadLocation) || !strings.Contains(err.Error(), "/gnu/store") {
		t.Errorf("got %v", err)
	}
}

// TestStaleTempsRemovedUnlessInUse: the next push removes temporary files
// that no process holds, and keeps those of a push still writing (its NAR
// is locked, however old), and files too young to have been locked.
func TestStaleTempsRemovedUnlessInUse(t *testing.T) {
	// Where files are written unnamed, a push in progress has no temporary
	// file to keep; this is the other way, the one file systems without
	// O_TMPFILE take.
	defer atomicfile.NamedOnly()()
	c, dir := openCache(t)
	ctx := context.Background()
	old := time.Now().Add(-time.Minute)
	write := func(name string, age time.Time) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("left by a killed push"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, age, age); err != nil {
			t.Fatal(err)
		}
		return f
	}
	abandoned := write("nar/.tmp-111", old)
	abandonedTop := write(".tmp-222", old)
	fresh := write("nar/.tmp-333", time.Now())
	notOurs := write("nar/keep-me", old)
	held := write("nar/.tmp-444", old)
	hf, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if err := syscall.Flock(int(hf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	// A push in progress: its stream blocks until we let it finish.
	info, res := vector(t)
	release := make(chan struct{})
	started := make(chan struct{})
	type outcome struct {
		p   interface{ Commit(context.Context) error }
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		p, err := c.Upload(ctx, info, narstream.DefaultCompression, func(ctx context.Context, w io.Writer) (narstream.Result, error) {
			close(started)
			<-release
			_, err := io.Copy(w, bytes.NewReader(make([]byte, 97)))
			return res, err
		})
		done <- outcome{p, err}
	}()
	<-started
	var inFlight []string
	all, _ := filepath.Glob(filepath.Join(dir, "nar", ".tmp-*"))
	for _, f := range all {
		if f != abandoned && f != fresh && f != held {
			inFlight = append(inFlight, f)
			_ = os.Chtimes(f, old, old) // as old as the abandoned ones
		}
	}
	if len(inFlight) != 1 {
		t.Fatalf("the push in progress has %d temporary files, want 1", len(inFlight))
	}

	// Another push of the same cache cleans up.
	other, _ := filecache.New(filecache.Options{URL: "file://" + dir, NoSync: true})
	if n := other.RemoveStaleTemps(); n != 2 {
		t.Errorf("removed %d files, want the 2 abandoned ones", n)
	}
	for _, f := range []string{abandoned, abandonedTop} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was not removed", f)
		}
	}
	for _, f := range append([]string{fresh, notOurs, held}, inFlight...) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s was removed: %v", f, err)
		}
	}
	close(release)
	o := <-done
	if o.err != nil {
		t.Fatalf("the push in progress failed after the cleanup: %v", o.err)
	}
	if err := o.p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "nar", ".tmp-*")); len(left) != 2 {
		t.Errorf("temporary files left: %v, want the fresh and the held one", left)
	}
}

// TestExistingNarKeptOrRepaired: a NAR already in nar/ under the name the
// upload computes (a push killed before its narinfo) is kept when its size
// and SHA-256 are the upload's, and replaced when they are not (a power
// loss cut it short); no other file is left either way.
func TestExistingNarKeptOrRepaired(t *testing.T) {
	t.Parallel()
	c, dir := openCache(t)
	ctx := context.Background()
	info, res := vector(t)
	data := []byte("the compressed bytes of a NAR, as far as this cache can tell")
	sum := sha256.Sum256(data)
	res.FileHash = *nixhash.MustNewHash(nixhash.SHA256, sum[:])
	res.FileSize = uint64(len(data))
	upload := func() {
		t.Helper()
		p, err := c.Upload(ctx, info, narstream.DefaultCompression, func(ctx context.Context, w io.Writer) (narstream.Result, error) {
			_, err := w.Write(data)
			return res, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nar := filepath.Join(dir, "nar", res.FileHashHex()+".nar.zst")
	upload()
	before, err := os.Stat(nar)
	if err != nil {
		t.Fatal(err)
	}
	upload()
	after, _ := os.Stat(nar)
	if !os.SameFile(before, after) {
		t.Error("an intact NAR was replaced")
	}
	if err := os.Truncate(nar, 10); err != nil {
		t.Fatal(err)
	}
	upload()
	if got, _ := os.ReadFile(nar); !bytes.Equal(got, data) {
		t.Errorf("a cut-short NAR was kept: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "nar")); len(entries) != 1 {
		t.Errorf("nar/ holds %d files, want 1", len(entries))
	}
}

// Package filecache writes a plain Nix binary cache on the local filesystem,
// in the layout `nix copy --to file://DIR` produces and every Nix can
// substitute from: nix-cache-info, <hash>.narinfo and nar/<filehash>.nar.<ext>.
//
// Every file is written unnamed (O_TMPFILE) and linked into place, or,
// where the file system cannot, written to a temporary name in the same
// directory and renamed into place; either way a killed push never leaves a
// half-written NAR or narinfo. A narinfo is written only after its NAR is
// in place (and, as the pipeline guarantees, after every reference's
// narinfo).
//
// Durability costs one syncfs(2) per wave of narinfos, not one fsync per
// file: NARs are linked into place unsynced, and before a narinfo is
// written a syncfs that began after its NAR was linked must have ended
// (pushes publishing at the same time share it). Narinfos are written
// unsynced too, and Flush, at the end of the push, syncs once more. So
// after a power loss no narinfo names a NAR that is not on disk; a narinfo
// written in the last moments may be empty, which Missing counts as
// missing, so the next push writes it again.
//
// A push killed with SIGKILL leaves nothing behind where files are
// unnamed, and its temporary files where they are not. Each temporary
// file is locked (flock) by the push writing it until it is
// renamed into place, and the next push of the cache removes those nobody
// holds a lock on, so other pushes to the same cache at the same time, by
// this process or others, keep theirs.
package filecache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// ErrBadLocation marks a cache directory that cannot be used.
var ErrBadLocation = fault.BadInput("unusable cache location")

// Options configure a file cache.
type Options struct {
	// URL is file:///absolute/dir.
	URL string
	// StoreDir is the store the cache serves (default /nix/store).
	StoreDir string
	// SigningKey, if set, signs every narinfo (Sig: name:signature).
	SigningKey *signing.Key
	// OmitDeriver leaves the Deriver line out of narinfos.
	OmitDeriver bool
	// NoSync skips fsync before renames (faster, but a power loss may leave
	// empty files; a killed process never does either way).
	NoSync bool
	// ReadOnly (dry runs) creates nothing: a missing cache is an empty one.
	ReadOnly bool
}

// Cache is a file:// binary cache.
type Cache struct {
	opts Options
	dir  string

	// syncMu serialises syncfs calls; renamed counts the NARs renamed into
	// place, synced how many of them a finished syncfs covers, and dirty
	// says a narinfo was written since the last one began.
	syncMu          sync.Mutex
	renamed, synced atomic.Uint64
	dirty           atomic.Bool
}

// New checks the URL (by target.ParseURL's rules) and returns the cache;
// it touches nothing on disk.
func New(opts Options) (*Cache, error) {
	ref, err := target.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadLocation, err)
	}
	f, ok := ref.(target.File)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a file:// URL", ErrBadLocation, ref)
	}
	if opts.StoreDir == "" {
		opts.StoreDir = store.DefaultStoreDir
	}
	return &Cache{opts: opts, dir: f.Dir}, nil
}

// Factory builds file caches for target.File references (the "file"
// scheme of a backend.Registry).
type Factory struct{}

// Scheme is "file".
func (Factory) Scheme() string { return target.File{}.Scheme() }

// New builds the cache for t, signing with its key (named: target.Resolve
// refuses a bare key without a name for a plain binary cache).
func (Factory) New(t *target.Target, opts backend.Options) (backend.Backend, error) {
	return New(Options{URL: t.Ref.Key(), StoreDir: opts.StoreDir, SigningKey: t.SigningKey,
		OmitDeriver: t.OmitDeriver, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly})
}

// String names the cache for messages.
func (c *Cache) String() string { return "file://" + c.dir }

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Open creates the cache directory (but not its parent) and nix-cache-info
// if needed, and checks that an existing cache serves the same store.
func (c *Cache) Open(ctx context.Context) (backend.Info, error) {
	parent := filepath.Dir(c.dir)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return backend.Info{}, fmt.Errorf("%w: %s does not exist; create it first or choose another cache directory", ErrBadLocation, parent)
	}
	if c.opts.ReadOnly {
		return backend.Info{}, nil
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "nar"), 0o755); err != nil {
		what := "creating " + c.dir
		if fi, serr := os.Stat(c.dir); serr == nil && fi.IsDir() {
			what = "creating " + filepath.Join(c.dir, "nar") + " in the existing " + c.dir
		}
		return backend.Info{}, fmt.Errorf("%w: %s: %v", ErrBadLocation, what, fsutil.Cause(err))
	}
	infoFile := filepath.Join(c.dir, binarycache.CacheInfoFile)
	data, err := os.ReadFile(infoFile)
	switch {
	case err == nil:
		if err := binarycache.CheckCacheInfo(data, c.opts.StoreDir, c.dir); err != nil {
			return backend.Info{}, fmt.Errorf("%w: %v", ErrBadLocation, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := c.writeAtomic(infoFile, []byte(binarycache.CacheInfo(c.opts.StoreDir)), !c.opts.NoSync); err != nil {
			return backend.Info{}, fmt.Errorf("%w: writing nix-cache-info: %v", ErrBadLocation, err)
		}
	default:
		return backend.Info{}, fmt.Errorf("%w: reading %s: %v", ErrBadLocation, infoFile, fsutil.Cause(err))
	}
	c.RemoveStaleTemps()
	return backend.Info{}, nil
}

// lockGrace is how young a temporary file may be and still belong to a
// push that created it and has not locked it yet (microseconds, in fact).
const lockGrace = 2 * time.Second

// unlockedMaxAge is the age after which a temporary file is removed on a
// file system without file locks, where being in use cannot be checked.
const unlockedMaxAge = time.Hour

// RemoveStaleTemps deletes the temporary files that killed pushes left in
// the cache: those that no process holds a lock on. It returns how many it
// removed. Open calls it; errors are ignored (the files only take space).
func (c *Cache) RemoveStaleTemps() int {
	removed := 0
	for _, d := range []string{c.dir, filepath.Join(c.dir, "nar")} {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		entries, _ := f.ReadDir(-1) // unsorted: nar/ may hold many files
		f.Close()
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), atomicfile.TempPrefix) && e.Type().IsRegular() &&
				removeIfStale(filepath.Join(d, e.Name())) {
				removed++
			}
		}
	}
	return removed
}

// removeIfStale removes one temporary file if no process holds its lock.
func removeIfStale(name string) bool {
	fi, err := os.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < lockGrace {
		return false
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false // a live push is writing it
	default:
		// No locks on this file system: only an old file is surely abandoned.
		if time.Since(fi.ModTime()) < unlockedMaxAge {
			return false
		}
	}
	// Remove only the file we locked, not one renamed to the same name since.
	now, err := os.Lstat(name)
	if err != nil {
		return false
	}
	if locked, err := f.Stat(); err != nil || !os.SameFile(now, locked) {
		return false
	}
	return os.Remove(name) == nil
}

// createTemp creates the file a NAR or narinfo is written to before it is
// committed into dir: unnamed where the file system allows, so that a
// killed push leaves nothing and a file costs one directory operation;
// otherwise a temporary file, locked until release is called (after the
// file is committed or aborted). The lock lives on a second descriptor so
// that it outlasts the close that precedes the rename in Commit.
func createTemp(dir string) (tmp *atomicfile.File, release func(), err error) {
	tmp, err = atomicfile.CreateUnnamed(dir)
	if err != nil {
		return nil, nil, err
	}
	if tmp.Unnamed() {
		return tmp, func() {}, nil
	}
	lk, err := os.Open(tmp.Name())
	if err != nil {
		tmp.Abort()
		return nil, nil, fmt.Errorf("locking a file in %s: %w", dir, fsutil.Cause(err))
	}
	// On a file system without locks the file is written unlocked; the
	// cleaner then goes by age alone.
	_ = syscall.Flock(int(lk.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return tmp, func() { lk.Close() }, nil
}

// narinfoFile is where a path's narinfo lives.
func (c *Cache) narinfoFile(storePath string) string {
	return filepath.Join(c.dir, binarycache.NarinfoName(storePath))
}

// LocalPresence is true: Missing reads the local file system
// (backend.LocalPresence).
func (c *Cache) LocalPresence() bool { return true }

// Missing reports the paths without a narinfo. Many paths are looked up
// on every core (a no-op push of a large closure is mostly this).
func (c *Cache) Missing(ctx context.Context, paths []string) (map[string]bool, error) {
	workers := min(2*runtime.GOMAXPROCS(0), len(paths)/512+1)
	lacks := make([]bool, len(paths))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i, n := w, 0; i < len(paths); i, n = i+workers, n+1 {
				if n%256 == 0 && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				fi, err := os.Lstat(c.narinfoFile(paths[i]))
				switch {
				case err == nil:
					// Empty: written just before a power loss took its contents.
					lacks[i] = fi.Size() == 0
				case errors.Is(err, fs.ErrNotExist):
					lacks[i] = true
				default:
					errs[w] = fmt.Errorf("checking %s: %w", c.narinfoFile(paths[i]), err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	missing := map[string]bool{}
	for i, p := range paths {
		if lacks[i] {
			missing[p] = true
		}
	}
	return missing, nil
}

// CachedClosure walks the narinfos from roots through their references
// and returns the closure they describe, when every narinfo on the way is
// there and names the path it is for (backend.CacheClosure). A no-op push
// to a file cache thus needs no Nix process: the narinfos were written
// references first, by us or by `nix copy`, and a path's references are
// the same in every store. Paths of one level of the walk are read on
// every core when there are many. A walk slower than Nix would be (a
// cache on a network file system: one round trip per narinfo) is given
// up for Nix's query; see walkBudget.
func (c *Cache) CachedClosure(ctx context.Context, roots []string) ([]string, bool) {
	start := time.Now()
	seen := make(map[string]bool, len(roots))
	var closure, frontier []string
	for _, r := range roots {
		if !seen[r] {
			seen[r] = true
			frontier = append(frontier, r)
		}
	}
	for len(frontier) > 0 {
		if ctx.Err() != nil || time.Since(start) > walkBudget(len(closure)) {
			return nil, false
		}
		refs := make([][]string, len(frontier))
		ok := make([]bool, len(frontier))
		read := func(i int) {
			refs[i], ok[i] = c.references(frontier[i])
		}
		if workers := min(2*runtime.GOMAXPROCS(0), len(frontier)/64); workers > 1 {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < len(frontier); i += workers {
						read(i)
					}
				})
			}
			wg.Wait()
		} else {
			for i := range frontier {
				read(i)
			}
		}
		closure = append(closure, frontier...)
		var next []string
		for i := range frontier {
			if !ok[i] {
				return nil, false
			}
			for _, r := range refs[i] {
				if !seen[r] {
					seen[r] = true
					next = append(next, r)
				}
			}
		}
		frontier = next
	}
	return closure, true
}

// walkBudget is how long a walk that has read n narinfos may have taken
// and still be worth finishing: twice what `nix-store -qR` takes for as
// many paths (measured on 2 cores: 0.09 s for 2,000 paths, 1 s for
// 20,000), where a local disk reads a narinfo in about 12 µs, plus a
// quarter of a second, so that a busy machine pausing the process does not
// send a walk of a local cache to Nix.
var walkBudget = func(n int) time.Duration {
	return 250*time.Millisecond + time.Duration(n)*100*time.Microsecond
}

// references reads the references of storePath from its narinfo; false
// when the narinfo is missing, empty, unreadable or for another path.
func (c *Cache) references(storePath string) ([]string, bool) {
	data, err := os.ReadFile(c.narinfoFile(storePath))
	if err != nil || len(data) == 0 {
		return nil, false
	}
	named, refs, err := binarycache.References(string(data), filepath.Dir(storePath))
	if err != nil || named != storePath {
		return nil, false
	}
	return refs, true
}

// Upload streams the compressed NAR into nar/ under its content hash.
func (c *Cache) Upload(ctx context.Context, info *store.PathInfo, comp narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	p, err := c.upload(ctx, info, comp, stream)
	return p, c.unwritable(err)
}

// upload is Upload, its errors not classified yet.
func (c *Cache) upload(ctx context.Context, info *store.PathInfo, comp narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	tmp, release, err := createTemp(filepath.Join(c.dir, "nar"))
	if err != nil {
		return nil, err
	}
	defer release()
	defer tmp.Abort()
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(tmp)
	defer func() { bw.Reset(nil); writers.Put(bw) }()
	res, err := stream(ctx, bw)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing the NAR of %s: %w", info.Path, err)
	}
	rel := binarycache.NarName(res, comp)
	// Unsynced: Commit syncs the file system before the narinfo names it.
	switch err := tmp.Link(filepath.Join(c.dir, rel), 0o644); {
	case errors.Is(err, fs.ErrExist):
		// The same NAR, from a push that published no narinfo for it (or
		// another path with the same contents): kept if it is whole, as a
		// power loss may have cut it short, and replaced otherwise.
		if intact(filepath.Join(c.dir, rel), res) {
			tmp.Abort()
		} else if err := tmp.Commit(filepath.Join(c.dir, rel), 0o644, false); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	return &pending{cache: c, info: info, res: res, url: rel, seq: c.renamed.Add(1)}, nil
}

// intact reports whether the file name holds exactly the compressed NAR
// res describes (its size and SHA-256).
func intact(name string, res narstream.Result) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || uint64(fi.Size()) != res.FileSize {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return bytes.Equal(h.Sum(nil), res.FileHash.Digest())
}

// writers are the NAR files' write buffers, reused: a fresh 256 KiB
// buffer per NAR costs more than writing a tiny NAR does.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 256<<10) }}

// syncUpTo returns once NARs 1..n (in rename order) are durable. One
// syncfs covers every NAR renamed before it began, so callers waiting
// while one runs share the next.
func (c *Cache) syncUpTo(n uint64) error {
	if c.opts.NoSync || c.synced.Load() >= n {
		return nil
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.synced.Load() >= n {
		return nil
	}
	return c.syncLocked()
}

// syncLocked runs one syncfs on the cache's file system; syncMu is held.
func (c *Cache) syncLocked() error {
	covered := c.renamed.Load()
	c.dirty.Store(false)
	if err := syncFS(c.dir); err != nil {
		c.dirty.Store(true)
		return fmt.Errorf("syncing %s to disk: %w", c.dir, fsutil.Cause(err))
	}
	if c.synced.Load() < covered {
		c.synced.Store(covered)
	}
	return nil
}

// Flush makes everything this cache wrote durable: Execute calls it once,
// after the last narinfo.
func (c *Cache) Flush(ctx context.Context) error {
	if c.opts.NoSync || c.opts.ReadOnly || (!c.dirty.Load() && c.synced.Load() >= c.renamed.Load()) {
		return nil
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.syncLocked()
}

// pending is a NAR in nar/ whose narinfo is not written yet.
type pending struct {
	cache *Cache
	info  *store.PathInfo
	res   narstream.Result
	url   string
	seq   uint64 // the NAR's number in rename order (Cache.syncUpTo)
}

func (p *pending) Result() narstream.Result { return p.res }

// Commit writes the narinfo.
func (p *pending) Commit(ctx context.Context) error {
	text, err := p.cache.Narinfo(p.info, p.res, p.url)
	if err != nil {
		return err
	}
	if err := p.cache.syncUpTo(p.seq); err != nil {
		return p.cache.unwritable(err)
	}
	p.cache.dirty.Store(true)
	return p.cache.unwritable(p.cache.writeAtomic(p.cache.narinfoFile(p.info.Path), []byte(text), false))
}

// unwritable marks the errors of a file system that is full, over quota
// or read-only (backend.ErrUnwritable): retrying the path, or pushing the
// next one, cannot succeed.
func (c *Cache) unwritable(err error) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)) {
		return err
	}
	return fmt.Errorf("%w: %w (free space in %s, or make it writable, and push again)", backend.ErrUnwritable, err, c.dir)
}

// Discard leaves the NAR file: it is content-addressed, harmless, and may be
// shared with another path's upload.
func (p *pending) Discard(ctx context.Context) error { return nil }

// Narinfo renders the narinfo text for an uploaded NAR. The local store's
// existing signatures are kept and the cache's key, if any, adds one.
func (c *Cache) Narinfo(info *store.PathInfo, res narstream.Result, url string) (string, error) {
	return binarycache.Signer{Key: c.opts.SigningKey, OmitDeriver: c.opts.OmitDeriver}.Narinfo(info, res, url), nil
}

// writeAtomic replaces a small file (narinfo, nix-cache-info), synced
// before its rename if sync is set.
func (c *Cache) writeAtomic(dst string, data []byte, sync bool) error {
	tmp, release, err := createTemp(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer release()
	if _, err := tmp.Write(data); err != nil {
		tmp.Abort()
		return fmt.Errorf("writing %s: %w", dst, fsutil.Cause(err))
	}
	return tmp.Commit(dst, 0o644, sync)
}

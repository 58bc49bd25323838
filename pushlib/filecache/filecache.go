// Package filecache writes a plain Nix binary cache on the local filesystem,
// in the layout `nix copy --to file://DIR` produces and every Nix can
// substitute from: nix-cache-info, <hash>.narinfo and nar/<filehash>.nar.<ext>.
//
// Every file is written to a temporary name in the same directory and
// renamed into place, so a killed push never leaves a half-written NAR or
// narinfo; a narinfo is written only after its NAR is in place (and, as the
// pipeline guarantees, after every reference's narinfo).
//
// A push killed with SIGKILL leaves its temporary files behind. Each
// temporary file is locked (flock) by the push writing it until it is
// renamed into place, and the next push of the cache removes those nobody
// holds a lock on, so other pushes to the same cache at the same time, by
// this process or others, keep theirs.
package filecache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ErrBadLocation marks a cache directory that cannot be used.
var ErrBadLocation = errors.New("unusable cache location")

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
}

// New checks the URL and returns the cache; it touches nothing on disk.
func New(opts Options) (*Cache, error) {
	dir, err := DirFromURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.StoreDir == "" {
		opts.StoreDir = store.DefaultStoreDir
	}
	return &Cache{opts: opts, dir: dir}, nil
}

// DirFromURL extracts the directory of a file:// URL; query parameters are
// not supported and rejected rather than silently ignored.
func DirFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" {
		return "", fmt.Errorf("%w: %q is not a file:// URL", ErrBadLocation, raw)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("%w: %q names a host; use file:///absolute/path", ErrBadLocation, raw)
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("%w: %q: query parameters are not supported (use --compression-method, --signing-key-file)", ErrBadLocation, raw)
	}
	if !filepath.IsAbs(u.Path) {
		return "", fmt.Errorf("%w: %q needs an absolute path", ErrBadLocation, raw)
	}
	return filepath.Clean(u.Path), nil
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
		return backend.Info{}, fmt.Errorf("%w: creating %s: %v", ErrBadLocation, c.dir, unwrapPathErr(err))
	}
	infoFile := filepath.Join(c.dir, "nix-cache-info")
	data, err := os.ReadFile(infoFile)
	switch {
	case err == nil:
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "StoreDir:"); ok && strings.TrimSpace(v) != c.opts.StoreDir {
				return backend.Info{}, fmt.Errorf("%w: %s serves store %s, not %s", ErrBadLocation, c.dir, strings.TrimSpace(v), c.opts.StoreDir)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		content := "StoreDir: " + c.opts.StoreDir + "\nWantMassQuery: 1\nPriority: 30\n"
		if err := c.writeAtomic(infoFile, []byte(content)); err != nil {
			return backend.Info{}, fmt.Errorf("%w: writing nix-cache-info: %v", ErrBadLocation, err)
		}
	default:
		return backend.Info{}, fmt.Errorf("%w: reading %s: %v", ErrBadLocation, infoFile, unwrapPathErr(err))
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

// createTemp creates a temporary file in dir, locked until release is
// called; release must be called after the file is committed or aborted.
// The lock lives on a second descriptor so that it outlasts the close that
// precedes the rename in Commit.
func createTemp(dir string) (tmp *atomicfile.File, release func(), err error) {
	tmp, err = atomicfile.Create(dir)
	if err != nil {
		return nil, nil, err
	}
	lk, err := os.Open(tmp.Name())
	if err != nil {
		tmp.Abort()
		return nil, nil, fmt.Errorf("locking a file in %s: %w", dir, unwrapPathErr(err))
	}
	// On a file system without locks the file is written unlocked; the
	// cleaner then goes by age alone.
	_ = syscall.Flock(int(lk.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return tmp, func() { lk.Close() }, nil
}

// narinfoFile is where a path's narinfo lives.
func (c *Cache) narinfoFile(storePath string) string {
	return filepath.Join(c.dir, store.HashPart(storePath)+".narinfo")
}

// Missing reports the paths without a narinfo.
func (c *Cache) Missing(ctx context.Context, paths []string) (map[string]bool, error) {
	missing := map[string]bool{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, err := os.Lstat(c.narinfoFile(p))
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			missing[p] = true
		default:
			return nil, fmt.Errorf("checking %s: %w", c.narinfoFile(p), err)
		}
	}
	return missing, nil
}

// Upload streams the compressed NAR into nar/ under its content hash.
func (c *Cache) Upload(ctx context.Context, info *store.PathInfo, comp narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	tmp, release, err := createTemp(filepath.Join(c.dir, "nar"))
	if err != nil {
		return nil, err
	}
	defer release()
	defer tmp.Abort()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	res, err := stream(ctx, bw)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing the NAR of %s: %w", info.Path, err)
	}
	rel := "nar/" + res.FileHashHex() + "." + comp.FileExt()
	if err := tmp.Commit(filepath.Join(c.dir, rel), 0o644, !c.opts.NoSync); err != nil {
		return nil, err
	}
	return &pending{cache: c, info: info, res: res, url: rel}, nil
}

// pending is a NAR in nar/ whose narinfo is not written yet.
type pending struct {
	cache *Cache
	info  *store.PathInfo
	res   narstream.Result
	url   string
}

func (p *pending) Result() narstream.Result { return p.res }

// Commit writes the narinfo.
func (p *pending) Commit(ctx context.Context) error {
	text, err := p.cache.Narinfo(p.info, p.res, p.url)
	if err != nil {
		return err
	}
	return p.cache.writeAtomic(p.cache.narinfoFile(p.info.Path), []byte(text))
}

// Discard leaves the NAR file: it is content-addressed, harmless, and may be
// shared with another path's upload.
func (p *pending) Discard(ctx context.Context) error { return nil }

// Narinfo renders the narinfo text for an uploaded NAR. The local store's
// existing signatures are kept and the cache's key, if any, adds one.
func (c *Cache) Narinfo(info *store.PathInfo, res narstream.Result, url string) (string, error) {
	ni := narinfo.NarInfo{
		StorePath:   info.Path,
		URL:         url,
		Compression: string(res.Compression.Method),
		FileHash:    nixhash.MustNewHashWithEncoding(nixhash.SHA256, res.FileHash, nixhash.NixBase32, true),
		FileSize:    res.FileSize,
		NarHash:     nixhash.MustNewHashWithEncoding(nixhash.SHA256, res.NarHash, nixhash.NixBase32, true),
		NarSize:     res.NarSize,
		References:  info.ReferenceNames(),
		CA:          info.CA,
	}
	if info.Deriver != "" && !c.opts.OmitDeriver {
		ni.Deriver = filepath.Base(info.Deriver)
	}
	seen := map[string]bool{}
	for _, s := range info.Signatures {
		sig, err := signature.ParseSignature(s)
		if err != nil || seen[sig.Name] {
			continue // an unparsable local signature is not ours to publish
		}
		seen[sig.Name] = true
		ni.Signatures = append(ni.Signatures, sig)
	}
	if k := c.opts.SigningKey; k != nil && !seen[k.Name] {
		ni.Signatures = append(ni.Signatures, signature.Signature{Name: k.Name, Data: k.Sign(info.Fingerprint())})
	}
	return ni.String(), nil
}

// writeAtomic replaces a small file (narinfo, nix-cache-info).
func (c *Cache) writeAtomic(dst string, data []byte) error {
	tmp, release, err := createTemp(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer release()
	if _, err := tmp.Write(data); err != nil {
		tmp.Abort()
		return fmt.Errorf("writing %s: %w", dst, unwrapPathErr(err))
	}
	return tmp.Commit(dst, 0o644, !c.opts.NoSync)
}

// unwrapPathErr keeps error messages from repeating long temp-file names.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

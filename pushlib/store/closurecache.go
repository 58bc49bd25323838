package store

import (
	"bufio"
	"bytes"
	csha256 "crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
)

// ClosureCache remembers the runtime closures Nix computed, so that a push
// of roots pushed before (the no-op of a repeated push) needs no Nix
// process at all.
//
// It rests on what makes a Nix store a store: a valid path's references
// never change. So the closure of a set of roots is the same as long as
// every root is the very file Nix registered then: the key of an entry is
// the roots with their device, inode and change time, which a deletion
// and rebuild, or a new hard link (nix-store --optimise), changes. An
// entry that does not match is ignored, and a wrong or stale one can only
// cost a Nix query: anything the cache turns out to lack is read from Nix,
// which checks it.
//
// Entries live in Dir (0700, owned by the user; a directory that is not
// is not used, and none is created inside another user's), one file each,
// the least recently used removed beyond MaxEntries.
type ClosureCache struct {
	Dir string
}

// MaxEntries is how many closures a ClosureCache keeps.
const MaxEntries = 32

// maxCachedPaths is the largest closure a ClosureCache keeps (~10 MB).
const maxCachedPaths = 150_000

const closureHeader = "cachix-select closure 1"

// DefaultClosureCacheDir is $XDG_CACHE_HOME/cachix-select/closures, else
// ~/.cache/cachix-select/closures; "" when there is no home (a system
// unit): then nothing is cached, never in a shared directory.
func DefaultClosureCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "cachix-select", "closures")
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) || filepath.Clean(home) == "/" {
		return "" // no home (HOME=/ in some service environments)
	}
	return filepath.Join(home, ".cache", "cachix-select", "closures")
}

// key identifies roots as they are on disk now; ok is false when one of
// them cannot be looked at (then nothing is cached).
func (c *ClosureCache) key(roots []string) (string, bool) {
	sorted := slices.Clone(roots)
	sort.Strings(sorted)
	h := csha256.New()
	for _, r := range slices.Compact(sorted) {
		var st syscall.Stat_t
		if err := syscall.Lstat(r, &st); err != nil {
			return "", false
		}
		fmt.Fprintf(h, "%s\x00%d %d %d.%d\n", r, st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// usable reports whether the cache directory is the user's own: it exists
// (or is created) with mode 0700.
func (c *ClosureCache) usable(create bool) bool {
	if c == nil || c.Dir == "" {
		return false
	}
	fi, err := os.Lstat(c.Dir)
	if err != nil && create && ownAncestor(c.Dir) {
		if os.MkdirAll(c.Dir, 0o700) != nil {
			return false
		}
		fi, err = os.Lstat(c.Dir)
	}
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// ownAncestor reports whether the nearest existing ancestor of dir belongs
// to this user: a push run as root with another user's $HOME (sudo)
// creates nothing in that user's home.
func ownAncestor(dir string) bool {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Lstat(d); err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			return ok && fi.IsDir() && int(st.Uid) == os.Geteuid()
		}
		if d == filepath.Dir(d) {
			return false
		}
	}
}

// Get returns the closure of roots if it is known, with the store paths
// checked against storeDir.
func (c *ClosureCache) Get(storeDir string, roots []string) ([]string, bool) {
	if len(roots) == 0 || !c.usable(false) {
		return nil, false
	}
	key, ok := c.key(roots)
	if !ok {
		return nil, false
	}
	file := filepath.Join(c.Dir, key[:32])
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, false
	}
	header, rest, _ := bytes.Cut(data, []byte("\n"))
	gotKey, rest, _ := bytes.Cut(rest, []byte("\n"))
	if string(header) != closureHeader || string(gotKey) != key {
		return nil, false
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(rest))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		p := sc.Text()
		if _, err := ParsePath(storeDir, p); err != nil {
			return nil, false
		}
		paths = append(paths, p)
	}
	if sc.Err() != nil || len(paths) == 0 {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(file, now, now) // recently used
	return paths, true
}

// Put records the closure of roots (errors are ignored: a closure not
// cached costs a Nix query next time, nothing else).
func (c *ClosureCache) Put(roots, closure []string) {
	if len(roots) == 0 || len(closure) == 0 || len(closure) > maxCachedPaths || !c.usable(true) {
		return
	}
	key, ok := c.key(roots)
	if !ok {
		return
	}
	var b strings.Builder
	b.Grow(len(closure) * 64)
	b.WriteString(closureHeader + "\n" + key + "\n")
	for _, p := range closure {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	if atomicfile.WriteFile(filepath.Join(c.Dir, key[:32]), []byte(b.String()), 0o600, false) != nil {
		return
	}
	c.evict()
}

// evict removes the least recently used entries beyond MaxEntries.
func (c *ClosureCache) evict() {
	entries, err := os.ReadDir(c.Dir)
	if err != nil || len(entries) <= MaxEntries {
		return
	}
	type entry struct {
		name string
		used time.Time
	}
	var all []entry
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			all = append(all, entry{e.Name(), fi.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.After(all[j].used) })
	for _, e := range all[min(MaxEntries, len(all)):] {
		os.Remove(filepath.Join(c.Dir, e.name))
	}
}

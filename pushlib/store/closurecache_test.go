package store_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// fakeStore makes a store directory holding n regular files named like
// store paths and returns the directory and the paths.
func fakeStore(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range n {
		p := filepath.Join(dir, "0123456789abcdfghijklmnpqrsvwxyz"[:31]+strconv.Itoa(i%10)+"-p"+strconv.Itoa(i))
		if err := os.WriteFile(p, []byte("x"), 0o444); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths
}

// TestClosureCache: a closure put is got back for the same roots in any
// order, and missed once a root is not the file it was (recreated, or
// given a new hard link as nix-store --optimise does), when the entry is
// damaged or from another store, or when the directory is not the user's
// own; it keeps the MaxEntries most recently used.
func TestClosureCache(t *testing.T) {
	storeDir, paths := fakeStore(t, 6)
	c := &store.ClosureCache{Dir: filepath.Join(t.TempDir(), "closures")}
	roots, closure := paths[:2], paths
	if _, ok := c.Get(storeDir, roots); ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put(roots, closure)
	got, ok := c.Get(storeDir, []string{roots[1], roots[0], roots[1]})
	if !ok || !slices.Equal(got, closure) {
		t.Fatalf("Get = %v, %v; want the closure put", got, ok)
	}
	if fi, err := os.Stat(c.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	if _, ok := c.Get(filepath.Join(filepath.Dir(storeDir), "other"), roots); ok {
		t.Error("hit for another store directory")
	}

	// A root deleted and built again: another inode.
	if err := os.Remove(roots[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(roots[0], []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(storeDir, roots); ok {
		t.Error("hit after a root was recreated")
	}
	c.Put(roots, closure)
	if _, ok := c.Get(storeDir, roots); !ok {
		t.Fatal("miss right after Put")
	}
	// A new hard link changes the root's change time.
	if err := os.Link(roots[1], filepath.Join(t.TempDir(), "link")); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(storeDir, roots); ok {
		t.Error("hit after a root got a new hard link")
	}

	// A damaged entry is a miss.
	c.Put(paths[2:3], closure)
	entries, _ := os.ReadDir(c.Dir)
	for _, e := range entries {
		f := filepath.Join(c.Dir, e.Name())
		data, _ := os.ReadFile(f)
		os.WriteFile(f, append(data, []byte("not a store path\n")...), 0o600)
	}
	if _, ok := c.Get(storeDir, paths[2:3]); ok {
		t.Error("hit on a damaged entry")
	}

	// A directory others can write to is not used.
	c.Put(paths[3:4], closure)
	if err := os.Chmod(c.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(storeDir, paths[3:4]); ok {
		t.Error("hit in a directory others can write to")
	}
	os.Chmod(c.Dir, 0o700)

	// Eviction: the least recently used go first.
	for i := range store.MaxEntries + 5 {
		sd, ps := fakeStore(t, 1)
		c.Put(ps, ps)
		if i == 0 {
			defer func() {
				if _, ok := c.Get(sd, ps); ok {
					t.Error("the least recently used entry was kept")
				}
			}()
		}
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != store.MaxEntries {
		t.Errorf("%d entries, want %d", len(entries), store.MaxEntries)
	}
	// Nothing is created in another user's directory (root with a user's $HOME).
	if os.Geteuid() == 0 {
		home := filepath.Join(t.TempDir(), "home")
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		theirs := &store.ClosureCache{Dir: filepath.Join(home, ".cache", "cachix-select", "closures")}
		theirs.Put(roots, closure)
		if _, err := os.Stat(filepath.Join(home, ".cache")); err == nil {
			t.Error("a directory was created inside another user's home")
		}
	}
	var nilCache *store.ClosureCache
	nilCache.Put(roots, closure)
	if _, ok := nilCache.Get(storeDir, roots); ok {
		t.Error("a nil cache hit")
	}
}

package filecache_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/filecache"
)

// TestCachedClosure: the closure a file cache's narinfos describe, walked
// from the roots; incomplete (so that Nix is asked) when a narinfo on the
// way is missing, empty, damaged or for another path, or when the walk
// is slower than Nix would be. (Not parallel: it sets the time budget.)
func TestCachedClosure(t *testing.T) {
	c, dir := openCache(t)
	info, res := vector(t)
	path := func(i int) string { return fmt.Sprintf("/nix/store/%032d-p%d", i, i) }
	write := func(p string, refs ...string) {
		t.Helper()
		pi := *info
		pi.Path, pi.References = p, refs
		text, err := c.Narinfo(&pi, res, "nar/"+res.FileHashHex()+".nar.zst")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, binarycache.NarinfoName(p)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Root 0 refers to itself and 1…300 (one wide level, read on every
	// core); each of those to 301, which refers to a chain 302…310.
	leaf, wide := path(301), []string{path(0)}
	for i := 1; i <= 300; i++ {
		write(path(i), leaf)
		wide = append(wide, path(i))
	}
	write(path(0), wide...)
	for i := 301; i < 310; i++ {
		write(path(i), path(i+1))
	}
	write(path(310))
	var want []string
	for i := 0; i <= 310; i++ {
		want = append(want, path(i))
	}
	ctx := context.Background()
	got, ok := c.CachedClosure(ctx, []string{path(0), path(305)})
	slices.Sort(got)
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("CachedClosure = %d paths, %v; want the 311 paths", len(got), ok)
	}
	if got, ok := c.CachedClosure(ctx, []string{path(308)}); !ok || len(got) != 3 {
		t.Errorf("closure of the chain's end: %v, %v", got, ok)
	}

	for name, damage := range map[string]func(f string){
		"missing":   func(f string) { os.Remove(f) },
		"empty":     func(f string) { os.WriteFile(f, nil, 0o644) },
		"damaged":   func(f string) { os.WriteFile(f, []byte("StorePath: nonsense\n"), 0o644) },
		"elsewhere": func(f string) { data, _ := os.ReadFile(path0(dir)); os.WriteFile(f, data, 0o644) },
	} {
		for _, i := range []int{150, 307} {
			f := filepath.Join(dir, binarycache.NarinfoName(path(i)))
			saved, _ := os.ReadFile(f)
			damage(f)
			if got, ok := c.CachedClosure(ctx, []string{path(0)}); ok {
				t.Errorf("narinfo of %s %s: the walk is complete with %d paths", path(i), name, len(got))
			}
			os.WriteFile(f, saved, 0o644)
		}
	}
	if _, ok := c.CachedClosure(ctx, []string{"/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-gone"}); ok {
		t.Error("a root the cache lacks: complete")
	}
	// A walk slower than Nix's query would be (a cache on a network file
	// system) is given up: here, once it has read 100 narinfos.
	restore := filecache.SetWalkBudget(func(n int) time.Duration {
		if n >= 100 {
			return 0
		}
		return time.Hour
	})
	if _, ok := c.CachedClosure(ctx, []string{path(0)}); ok {
		t.Error("a walk over its time budget: complete")
	}
	if got, ok := c.CachedClosure(ctx, []string{path(305)}); !ok || len(got) != 6 {
		t.Errorf("a walk within its budget: %d paths, %v", len(got), ok)
	}
	restore()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := c.CachedClosure(cancelled, []string{path(0)}); ok {
		t.Error("cancelled: complete")
	}
}

// path0 is the narinfo file of the first test path (a narinfo for
// another path than its name says).
func path0(dir string) string {
	return filepath.Join(dir, binarycache.NarinfoName(fmt.Sprintf("/nix/store/%032d-p0", 0)))
}

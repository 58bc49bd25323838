package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/internal/nixtest"
)

// TestNixSpawnsDoNotGrowWithPaths: the Nix processes one push starts (the
// closure and path-info queries) are as many for a chain of 400 paths as
// for one of 5, for a push that uploads everything and for one that finds
// everything present; a push to a file cache lacking the root starts one
// (nix path-info --recursive), a no-op none (the closure is remembered
// from an earlier push, or walked through the cache's own narinfos), and
// a push to a cache lacking part of the closure one when the closure is
// remembered, two (nix-store --query, nix path-info) when it is not.
// Counts, not times.
func TestNixSpawnsDoNotGrowWithPaths(t *testing.T) {
	requireNix(t)
	t.Parallel()
	wrappers := t.TempDir()
	for _, name := range []string{"nix", "nix-store", "nix-build", "nix-instantiate", "nix-env"} {
		real, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		script := "#!/bin/sh\necho " + name + ` "$1" >> "$SPAWN_LOG"` + "\nexec " + real + ` "$@"` + "\n"
		nixtest.WriteScript(t, filepath.Join(wrappers, name), script)
	}
	spawns := func(root, cache string, env ...string) []string {
		t.Helper()
		log := filepath.Join(t.TempDir(), "spawns.log")
		r := cli(t, "", append([]string{"PATH=" + wrappers + ":" + os.Getenv("PATH"), "SPAWN_LOG=" + log}, env...),
			"push", "-q", "--to", "file://"+cache, root)
		if r.code != 0 {
			t.Fatalf("push: %s", r.stderr)
		}
		data, _ := os.ReadFile(log)
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	count := map[string][]string{}
	for _, n := range []string{"5", "400"} {
		root := nixBuild(t, "chain", t.Name()+n, "--arg", "chainCount", n)
		cache := filepath.Join(t.TempDir(), "cache")
		count["push "+n] = spawns(root, cache)
		// Without the closures earlier pushes remember.
		count["no-op "+n] = spawns(root, cache, "XDG_CACHE_HOME="+t.TempDir())
		count["known no-op "+n] = spawns(root, cache)
		if got := len(checkCacheConsistent(t, cache)); got != map[string]int{"5": 5, "400": 400}[n] {
			t.Fatalf("chain of %s: %d narinfos", n, got)
		}
		// The closure is known, the cache lacks a path of it: Nix is
		// asked about that path, which is pushed again.
		infos, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
		os.Remove(infos[len(infos)/2])
		count["one missing "+n] = spawns(root, cache)
		if got := len(checkCacheConsistent(t, cache)); got != map[string]int{"5": 5, "400": 400}[n] {
			t.Fatalf("chain of %s after a narinfo was removed: %d narinfos", n, got)
		}
		// Not known, and the walk through the cache's narinfos stops at
		// the missing one: the closure comes from Nix, and the path is
		// pushed again.
		infos, _ = filepath.Glob(filepath.Join(cache, "*.narinfo"))
		os.Remove(infos[len(infos)/3])
		count["one missing, not known "+n] = spawns(root, cache, "XDG_CACHE_HOME="+t.TempDir())
		if got := len(checkCacheConsistent(t, cache)); got != map[string]int{"5": 5, "400": 400}[n] {
			t.Fatalf("chain of %s after a narinfo was removed: %d narinfos", n, got)
		}
	}
	// A cache `nix copy` wrote is walked the same way: a no-op of a
	// closure not known starts no Nix process and adds nothing.
	root := nixBuild(t, "chain", t.Name()+"400", "--arg", "chainCount", "400")
	copied := filepath.Join(t.TempDir(), "copied")
	mustRun(t, "nix", "--extra-experimental-features", "nix-command", "copy", "--to", "file://"+copied, root)
	before, _ := filepath.Glob(filepath.Join(copied, "*.narinfo"))
	count["no-op, nix copy's cache"] = spawns(root, copied, "XDG_CACHE_HOME="+t.TempDir())
	if after, _ := filepath.Glob(filepath.Join(copied, "*.narinfo")); len(before) != 400 || len(after) != 400 {
		t.Errorf("nix copy's cache: %d narinfos before the no-op, %d after; want 400", len(before), len(after))
	}
	if got := count["no-op, nix copy's cache"]; len(got) != 1 || got[0] != "" {
		t.Errorf("no-op push to a cache nix copy wrote: Nix processes %v, want none", got)
	}
	t.Logf("Nix processes per push: %v", count)
	for _, kind := range []string{"push", "one missing, not known"} {
		small, large := count[kind+" 5"], count[kind+" 400"]
		if len(small) == 0 || small[0] == "" {
			t.Fatalf("%s: no Nix process seen; the wrappers are not used", kind)
		}
		if len(large) != len(small) {
			t.Errorf("%s: %d Nix processes for 400 paths, %d for 5: %v against %v", kind, len(large), len(small), large, small)
		}
	}
	// A file cache that lacks the root: one `nix path-info --recursive`
	// gives the closure and its metadata; one that has it: the closure
	// alone, the cheaper query.
	if got := count["push 400"]; len(got) != 1 || !strings.HasPrefix(got[0], "nix ") {
		t.Errorf("push to an empty file cache: Nix processes %v, want one nix path-info", got)
	}
	for _, n := range []string{"5", "400"} {
		if got := count["no-op "+n]; len(got) != 1 || got[0] != "" {
			t.Errorf("no-op push, the closure not known (%s paths): Nix processes %v, want none (the cache's narinfos are walked)", n, got)
		}
		if got := count["one missing, not known "+n]; len(got) != 2 || got[0] != "nix-store --query" || !strings.HasPrefix(got[1], "nix ") {
			t.Errorf("push of one path missing, the closure not known (%s paths): Nix processes %v, want nix-store --query, nix path-info", n, got)
		}
		if got := count["known no-op "+n]; len(got) != 1 || got[0] != "" {
			t.Errorf("no-op push of a closure pushed before (%s paths): Nix processes %v, want none", n, got)
		}
		if got := count["one missing "+n]; len(got) != 1 || !strings.HasPrefix(got[0], "nix ") {
			t.Errorf("push of one path missing from a known closure (%s paths): Nix processes %v, want one nix path-info", n, got)
		}
	}
}

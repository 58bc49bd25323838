package tests

import (
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// TestPartBuffersRaiseTheMemoryLimit: the soft memory limit the binary
// sets must leave room for the part buffers the user asked for. With
// `-s 16777216 -n 8` (a 144 MiB budget of part buffers) under the default
// limit (112 MiB on 2 cores) every allocation ran the garbage collector:
// hundreds of collections and 1.6 × the CPU for the benchmark's Cachix
// push (here: 52 collections against 5, now 4 against 4). Counted with
// GODEBUG=gctrace=1, not timed.
func TestPartBuffersRaiseTheMemoryLimit(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "memlimit-token-81d2"
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "default", Public: true, WriteTokens: []string{token}},
		{Name: "large", Public: true, WriteTokens: []string{token}},
	}})
	root := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "20", "--arg", "bigSize", "3000000")
	tf := tokenFile(t, token)
	gcs := func(cache string, extra ...string) int {
		t.Helper()
		args := append([]string{"push", "-q", "--host", srv.URL(), "--cache", cache, "--auth-token-file", tf}, extra...)
		r := cli(t, "", []string{"GODEBUG=gctrace=1"}, append(args, root)...)
		if r.code != 0 {
			t.Fatalf("push to %s: %d %s", cache, r.code, r.stderr)
		}
		n := 0
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.HasPrefix(l, "gc ") {
				n++
			}
		}
		return n
	}
	def := gcs("default")
	large := gcs("large", "-s", "16777216", "-n", "8")
	t.Logf("garbage collections: %d with the default parts, %d with -s 16777216 -n 8", def, large)
	if large > 3*def+20 {
		t.Errorf("%d garbage collections with 16 MiB parts, 8 in flight, against %d by default: the memory limit leaves no room for the part buffers", large, def)
	}
}

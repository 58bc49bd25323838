package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitQueueEmpty polls `queue list --json` until the queue is empty.
func waitQueueEmpty(t *testing.T, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if queueLen(t, state) == 0 {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(state, "push.log"))
			t.Fatalf("queue not empty after %v; push.log:\n%s", within, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueLen is the number of queued entries.
func queueLen(t *testing.T, state string) int {
	t.Helper()
	r := cli(t, "", nil, "queue", "list", "--json", "--state-dir", state)
	if r.code != 0 {
		t.Fatalf("queue list: %s", r.stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("queue list --json: %v: %q", err, r.stdout)
	}
	return len(rows)
}

// TestActivateQueuesWhenOfflineAndFlushesLater: the cache is unusable at
// activation, activation still succeeds quickly, the push waits in the
// queue, and a later flush with the cache back pushes it and empties the
// queue; the next activation is silent and instant.
func TestActivateQueuesWhenOfflineAndFlushesLater(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	parent := filepath.Join(dir, "offline")
	cacheURL := "file://" + filepath.Join(parent, "cache") // parent missing: "offline"
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": cacheURL},
		"paths": []any{map[string]any{"storePath": app}}})

	start := time.Now()
	r := cli(t, "", nil, "activate", "--state-dir", state, m)
	if r.code != 0 || !strings.Contains(r.stderr, "in the background") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("activate: code %d, stderr %q", r.code, r.stderr)
	}
	// A hang detector, not a speed test (speed lives in tests/bench).
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("activate took %v", d)
	}
	// The background flush fails (cache unusable) and the entry stays queued.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := cli(t, "", nil, "queue", "list", "--json", "--state-dir", state).stdout
		if strings.Contains(out, `"attempts": 1`) && strings.Contains(out, "does not exist") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failed background push was not recorded: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode: %v %v", fi, err)
	}

	// --strict makes the same situation fail the caller; foreground shows it.
	r = cli(t, "", nil, "activate", "--strict", "--mode", "foreground", "--state-dir", state, m)
	if r.code != 1 {
		t.Errorf("strict foreground activate while offline: code %d, %s", r.code, r.stderr)
	}

	// Back online: a flush pushes it and empties the queue.
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	r = cli(t, "", nil, "queue", "flush", "--state-dir", state)
	if r.code != 0 {
		t.Fatalf("flush: %d %s", r.code, r.stderr)
	}
	if n := queueLen(t, state); n != 0 {
		t.Fatalf("queue holds %d entries after a successful flush", n)
	}
	checkCacheConsistent(t, filepath.Join(parent, "cache"))
	if n := len(checkCacheConsistent(t, filepath.Join(parent, "cache"))); n != 7 {
		t.Fatalf("cache holds %d paths, want 7", n)
	}

	// Nothing new: silent and fast, and nothing queued.
	start = time.Now()
	r = cli(t, "", nil, "activate", "--state-dir", state, m)
	if r.code != 0 || r.stderr != "" || r.stdout != "" {
		t.Fatalf("second activate printed %q %q", r.stdout, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a no-op activate took %v", d)
	}
	if n := queueLen(t, state); n != 0 {
		t.Fatalf("a no-op activate queued %d entries", n)
	}
}

// TestActivateBackgroundPushes: with the cache reachable, the background
// push lands and the queue drains by itself.
func TestActivateBackgroundPushes(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cache := filepath.Join(dir, "cache")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + cache},
		"paths": []any{map[string]any{"storePath": app}}})
	if r := cli(t, "", nil, "activate", "--state-dir", state, m); r.code != 0 {
		t.Fatal(r.stderr)
	}
	waitQueueEmpty(t, state, 30*time.Second)
	if n := len(checkCacheConsistent(t, cache)); n != 7 {
		t.Fatalf("cache holds %d paths, want 7", n)
	}
}

// TestActivateDryRunAndBadInput: dry-run reports and queues nothing; a bad
// manifest is a warning (exit 0) unless --strict (exit 2).
func TestActivateDryRunAndBadInput(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + filepath.Join(dir, "cache")},
		"paths": []any{map[string]any{"storePath": app}}})
	r := cli(t, "", nil, "activate", "--dry-run", "--state-dir", state, m)
	if r.code != 0 || !strings.Contains(r.stderr, "Would push 7 paths") {
		t.Fatalf("dry-run: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); err == nil {
		t.Error("dry-run created the cache")
	}
	if n := queueLen(t, state); n != 0 {
		t.Errorf("dry-run queued %d entries", n)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":3}`), 0o644)
	r = cli(t, "", nil, "activate", "--state-dir", state, bad)
	if r.code != 0 || !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "version") {
		t.Errorf("bad manifest without --strict: %d %q", r.code, r.stderr)
	}
	r = cli(t, "", nil, "activate", "--strict", "--state-dir", state, bad)
	if r.code != 2 {
		t.Errorf("bad manifest with --strict: code %d", r.code)
	}
	// --timeout 0 would be no limit at all, not an instant one.
	r = cli(t, "", nil, "activate", "--strict", "--mode", "foreground", "--timeout", "0s", "--state-dir", state, m)
	if r.code != 2 || !strings.Contains(r.stderr, "--timeout 0s is no time at all") {
		t.Errorf("--timeout 0s: code %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); err == nil {
		t.Error("--timeout 0s pushed")
	}
}

// TestQueueDropsGarbageCollectedPaths: a queued path that was collected
// before the flush is dropped with a warning, not retried forever.
func TestQueueDropsGarbageCollectedPaths(t *testing.T) {
	requireNix(t)
	t.Parallel()
	keep := nixBuild(t, "single", t.Name())
	gone := nixBuild(t, "empty", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	parent := filepath.Join(dir, "later")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + filepath.Join(parent, "cache")},
		"paths": []any{map[string]any{"storePath": keep}, map[string]any{"storePath": gone}}})
	// Queue it while the cache is unusable, in the foreground so nothing races us.
	if r := cli(t, "", nil, "activate", "--mode", "foreground", "--state-dir", state, m); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if queueLen(t, state) != 1 {
		t.Fatal("not queued")
	}
	mustRun(t, "nix-store", "--delete", gone)
	os.MkdirAll(parent, 0o755)
	r := cli(t, "", nil, "queue", "flush", "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.stderr, gone) || !strings.Contains(r.stderr, "garbage-collected") {
		t.Fatalf("flush: %d %s", r.code, r.stderr)
	}
	if queueLen(t, state) != 0 {
		t.Fatal("queue not empty")
	}
	pub := checkCacheConsistent(t, filepath.Join(parent, "cache"))
	if !pub[keep] || pub[gone] {
		t.Fatalf("published %v", pub)
	}
}

// TestQueueFlushLock: while one flush holds the lock, another returns at
// once without pushing.
func TestQueueFlushLock(t *testing.T) {
	requireNix(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(state, "flush.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lockFile(t, f)
	start := time.Now()
	r := cli(t, "", nil, "queue", "flush", "--state-dir", state)
	if r.code != 0 || !strings.Contains(r.stderr, "another flush is running") || time.Since(start) > 2*time.Second {
		t.Fatalf("flush with the lock held: %d %q after %v", r.code, r.stderr, time.Since(start))
	}
}

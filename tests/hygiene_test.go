package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// TestBadStorePathNames: names Nix rejects are refused by `manifest
// check`, push and activate with one short line in which the name is
// escaped and cut, and nothing is queued (such an entry could never go
// out).
func TestBadStorePathNames(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	const hash = "0123456789abcdfghijklmnpqrsvwxyz"
	names := []struct{ name, storePath, want string }{
		{"NUL", "/nix/store/" + hash + "-a\x00b", `'\x00'`},
		{"newline", "/nix/store/" + hash + "-a\nb", `'\n'`},
		{"ESC", "/nix/store/" + hash + "-\x1b[2J", `'\x1b'`},
		{"50 MB", "/nix/store/" + hash + "-" + strings.Repeat("x", 50<<20), "52428800 bytes long"},
		{"outside the allowed set", "/nix/store/" + hash + "-a&b", `'&'`},
		{"wrong hash", "/nix/store/" + strings.Repeat("e", 32) + "-hello", "not nix-base32"},
	}
	oneShortLine := func(t *testing.T, what string, r result, code int, want string) {
		t.Helper()
		msg := strings.TrimSpace(r.stderr)
		if r.code != code || !strings.Contains(msg, want) || strings.Contains(msg, "\n") ||
			strings.ContainsAny(msg, "\x00\x1b") || len(msg) > 600 || !utf8.ValidString(msg) {
			t.Errorf("%s: exit %d (want %d), %d bytes: %q; want one short line saying %q",
				what, r.code, code, len(msg), msg[:min(len(msg), 700)], want)
		}
	}
	for _, n := range names {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			m := writeManifestAs(t, dir, strings.ReplaceAll(n.name, " ", "-")+".json", map[string]any{"version": 1,
				"cache": map[string]any{"url": "file://" + filepath.Join(dir, "cache")},
				"paths": []any{map[string]any{"storePath": n.storePath}}})
			oneShortLine(t, "manifest check", cli(t, "", nil, "manifest", "check", m), 2, n.want)
			oneShortLine(t, "push", cli(t, "", nil, "push", m), 2, n.want)
			oneShortLine(t, "activate --strict", cli(t, "", nil, "activate", "--strict", "--state-dir", state, m), 2, n.want)
			oneShortLine(t, "activate", cli(t, "", nil, "activate", "--state-dir", state, m), 0, n.want)
			// argv cannot carry NUL, nor one argument of more than 128 KiB.
			if !strings.Contains(n.storePath, "\x00") && len(n.storePath) < 100<<10 {
				oneShortLine(t, "push PATH", cli(t, "", nil, "push", "--to", "file://"+filepath.Join(dir, "cache"), n.storePath), 2, n.want)
			}
			if !strings.ContainsAny(n.storePath, "\n") && len(n.storePath) < 4096 { // stdin splits on white space
				oneShortLine(t, "push from stdin", cli(t, n.storePath+"\n", nil, "push", "--to", "file://"+filepath.Join(dir, "cache")), 2, n.want)
			}
		})
	}
	t.Cleanup(func() {
		if n := queueLen(t, state); n != 0 {
			t.Errorf("%d entries queued for names that can never be pushed", n)
		}
	})
}

// TestKilledPushTempFilesRemoved: a push killed with SIGKILL while NARs
// are being written leaves no temporary file where the file system takes
// unnamed files (O_TMPFILE), and the temporary files of pushes on file
// systems that do not (or of older versions), which the test plants, are
// removed by the next push of that cache (not an hour later).
func TestKilledPushTempFilesRemoved(t *testing.T) {
	requireNix(t)
	t.Parallel()
	big := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "40", "--arg", "bigSize", "6000000")
	cache := filepath.Join(t.TempDir(), "cache")
	temps := func() []string {
		a, _ := filepath.Glob(filepath.Join(cache, "nar", ".tmp-*"))
		b, _ := filepath.Glob(filepath.Join(cache, ".tmp-*"))
		return append(a, b...)
	}
	killed := false
	for attempt := 0; attempt < 5 && !killed; attempt++ {
		// -v: --json shows progress events only then.
		cmd := exec.Command(binary, "push", "--json", "-v", "-j", "4", "--to", "file://"+cache, big)
		cmd.Env = cleanEnv()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			// Killed while NARs are being written.
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "progress" {
				killed = cmd.Process.Signal(syscall.SIGKILL) == nil
				break
			}
		}
		_ = cmd.Wait()
	}
	if !killed {
		t.Fatal("no push was killed while writing a NAR; the test proves nothing")
	}
	if left := temps(); unnamedFiles(t, cache) && len(left) != 0 {
		t.Errorf("the killed push left temporary files: %v", left)
	}
	// What a push leaves where files cannot be unnamed: abandoned (old,
	// unlocked) temporary files in nar/ and beside the narinfos.
	old := time.Now().Add(-time.Minute)
	for _, f := range []string{filepath.Join(cache, "nar", ".tmp-123"), filepath.Join(cache, ".tmp-456")} {
		if err := os.WriteFile(f, []byte("half a file"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	planted := temps()
	r := cli(t, "", nil, "push", "--to", "file://"+cache, big)
	if r.code != 0 {
		t.Fatalf("the next push failed: %s", r.stderr)
	}
	if left := temps(); len(left) != 0 {
		t.Errorf("temporary files left after the next push: %v (before it: %v)", left, planted)
	}
	if n := len(checkCacheComplete(t, cache)); n != 41 {
		t.Errorf("%d narinfos, want 41", n)
	}
}

// TestActivateRefusedHost: a Cachix host that refuses connections is not
// retried by the hooks: foreground activation queues the push at once,
// and the background flush gives up at once and releases the lock. The
// durations are logged (targets: under 5 s and under 1 s); the bounds
// checked are hang detectors only.
func TestActivateRefusedHost(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	token := tokenFile(t, "refused-token")
	m := writeManifest(t, dir, map[string]any{"version": 1,
		"cache": map[string]any{"name": "refused", "host": "http://127.0.0.1:1", "authTokenFile": token},
		"paths": []any{map[string]any{"storePath": app}}})

	state := filepath.Join(dir, "fg")
	start := time.Now()
	r := cli(t, "", nil, "activate", "--mode", "foreground", "--state-dir", state, m)
	fg := time.Since(start)
	if r.code != 0 || !strings.Contains(r.stderr, "cannot reach 127.0.0.1:1: connection refused") ||
		!strings.Contains(r.stderr, "stays queued") || strings.Contains(r.stderr, "retrying") {
		t.Fatalf("foreground activate: %d %q", r.code, r.stderr)
	}
	if fg > 20*time.Second || queueLen(t, state) != 1 {
		t.Errorf("foreground activate took %v, queue holds %d", fg, queueLen(t, state))
	}

	state = filepath.Join(dir, "bg")
	start = time.Now()
	r = cli(t, "", nil, "activate", "--state-dir", state, m)
	bg := time.Since(start)
	if r.code != 0 || !strings.Contains(r.stderr, "in the background") {
		t.Fatalf("background activate: %d %q", r.code, r.stderr)
	}
	waitFor(t, 20*time.Second, "the background flush records the refusal", func() bool {
		rows := queueEntries(t, state)
		return len(rows) == 1 && strings.Contains(fmt.Sprint(rows[0]["lastError"]), "connection refused") && !flushLockHeld(t, state)
	})
	flushed := time.Since(start)
	t.Logf("host refusing connections: foreground activate %v; background activate %v, its flush done after %v", fg, bg, flushed)
}

// TestManyRoots pushes 100,000 distinct real store paths given on stdin,
// which used to fail with "argument list too long". It takes minutes
// (adding the paths to the store), so it runs only with
// CACHIX_SELECT_TEST_MANY_ROOTS=1; pushlib/store's TestManyRootsFewProcesses
// checks the batching against the kernel's limit on every run.
func TestManyRoots(t *testing.T) {
	requireNix(t)
	if os.Getenv("CACHIX_SELECT_TEST_MANY_ROOTS") != "1" {
		t.Skip("set CACHIX_SELECT_TEST_MANY_ROOTS=1 to push 100,000 real store paths (takes minutes)")
	}
	const n = 100000
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 0; i < n; i++ {
		f := filepath.Join(src, fmt.Sprintf("many-roots-%d-%d", os.Getpid(), i))
		if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var paths []string
	for i := 0; i < n; i += 5000 {
		out := mustRun(t, "nix-store", append([]string{"--add"}, files[i:min(i+5000, n)]...)...)
		paths = append(paths, strings.Fields(out)...)
	}
	t.Cleanup(func() {
		for i := 0; i < len(paths); i += 5000 {
			_ = exec.Command("nix-store", append([]string{"--delete"}, paths[i:min(i+5000, len(paths))]...)...).Run()
		}
	})
	cache := filepath.Join(dir, "cache")
	start := time.Now()
	r := cli(t, strings.Join(paths, "\n"), nil, "push", "--json", "--to", "file://"+cache)
	if r.code != 0 {
		t.Fatalf("push of %d roots: %d %s", n, r.code, r.stderr)
	}
	if got := count(final(t, r.stdout), "pushed"); got != n {
		t.Errorf("pushed %d paths, want %d", got, n)
	}
	t.Logf("pushed %d roots in %v", n, time.Since(start))
	start = time.Now()
	r = cli(t, strings.Join(paths, "\n"), nil, "push", "--to", "file://"+cache)
	if r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("all %d paths are already", n)) {
		t.Fatalf("no-op push: %d %s", r.code, r.stderr)
	}
	t.Logf("no-op push of %d roots in %v", n, time.Since(start))
}

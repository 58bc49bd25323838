package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hungHost listens on 127.0.0.1 and, for each connection, does what
// answer says (nothing, for a host that accepts and never answers). It
// returns the host:port.
func hungHost(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if answer != nil {
				go answer(c)
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// headersThenStall reads a request, sends the headers of an answer and
// the start of its body, then nothing.
func headersThenStall(c net.Conn) {
	if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
		return
	}
	fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: 1000\r\n\r\n{\"name\":")
}

// quickNet shrinks the network bounds for the tests, through the
// environment so that background flushes get them too.
var quickNet = []string{"CACHIX_SELECT_STALL_TIMEOUT=1s", "CACHIX_SELECT_RETRY_FOR=2s", "CACHIX_AUTH_TOKEN=hung-test-token"}

// TestPushToHungHost: a Cachix host that accepts connections and never
// answers, or sends headers and then stalls the body, fails the push
// within the bounds, with a notice on the first retry and a one-line
// error naming the host.
func TestPushToHungHost(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "single", t.Name())
	for _, tc := range []struct {
		name   string
		answer func(net.Conn)
	}{
		{"never answers", nil},
		{"stalls the body", headersThenStall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := hungHost(t, tc.answer)
			start := time.Now()
			r := cli(t, "", quickNet, "push", "--host", "http://"+host, "--cache", "hung", app)
			took := time.Since(start)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
			}
			// A hang detector, not a speed test: 1 s stall, 2 s of retrying.
			if took > 20*time.Second {
				t.Errorf("the push took %v", took)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 2 {
				t.Fatalf("want a retry notice and one error line, got %q", r.stderr)
			}
			if want := "no answer from " + host + " (no progress for 1 s); retrying for up to 2 s"; lines[0] != want {
				t.Errorf("notice %q, want %q", lines[0], want)
			}
			if !strings.Contains(lines[1], "no answer from "+host+": no progress for 1 s (gave up after") {
				t.Errorf("error line %q does not name the host and the stall", lines[1])
			}
			t.Logf("gave up after %v: %s", took, lines[1])
		})
	}
}

// TestPinToHungHost: pin and pins list, which push nothing, also say on
// the first retry that the host is being retried, then fail in one line.
func TestPinToHungHost(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "single", t.Name())
	host := hungHost(t, nil)
	for name, args := range map[string][]string{
		"pin":       {"pin", "--host", "http://" + host, "hung", "v1", app},
		"pins list": {"pins", "list", "--host", "http://" + host, "hung"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, "", quickNet, args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 2 {
				t.Fatalf("want a retry notice and one error line, got %q", r.stderr)
			}
			if want := "no answer from " + host + " (no progress for 1 s); retrying for up to 2 s"; lines[0] != want {
				t.Errorf("notice %q, want %q", lines[0], want)
			}
			if !strings.Contains(lines[1], "no answer from "+host) {
				t.Errorf("error line %q does not name the host", lines[1])
			}
		})
	}
}

// flushLockHeld reports whether a flush holds the lock of a state directory.
func flushLockHeld(t *testing.T, state string) bool {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(state, "flush.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// queueEntries returns `queue list --json`.
func queueEntries(t *testing.T, state string) []map[string]any {
	t.Helper()
	r := cli(t, "", nil, "queue", "list", "--json", "--state-dir", state)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("queue list --json: %v: %q", err, r.stdout)
	}
	return rows
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHungCacheDoesNotBlockOtherCaches: activation hands a push to a hung
// cache to a background flush; that flush gives up within its bounds and
// releases the flush lock, and a later activation for another cache gets
// its push out. Once with a Cachix host that never answers (HTTP
// timeouts), once with a file cache on a "dead mount" (a FIFO that blocks
// every read, past any timeout: the flush time limit ends it).
func TestHungCacheDoesNotBlockOtherCaches(t *testing.T) {
	requireNix(t)
	t.Parallel()
	for _, tc := range []string{"silent Cachix host", "hung file cache"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			hungPath := nixBuild(t, "single", t.Name()+"-hung")
			goodPath := nixBuild(t, "app", t.Name()+"-good")
			var hungCache map[string]any
			if tc == "silent Cachix host" {
				hungCache = map[string]any{"name": "hung", "host": "http://" + hungHost(t, nil)}
			} else {
				fifoCache := filepath.Join(dir, "dead-mount", "cache")
				if err := os.MkdirAll(filepath.Join(fifoCache, "nar"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mkfifo(filepath.Join(fifoCache, "nix-cache-info"), 0o644); err != nil {
					t.Fatal(err)
				}
				hungCache = map[string]any{"url": "file://" + fifoCache}
			}
			hung := writeManifestAs(t, dir, "hung.json", map[string]any{"version": 1, "cache": hungCache,
				"paths": []any{map[string]any{"storePath": hungPath}}})
			goodCache := filepath.Join(dir, "good-cache")
			good := writeManifestAs(t, dir, "good.json", map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + goodCache},
				"paths": []any{map[string]any{"storePath": goodPath}}})
			env := append([]string{"CACHIX_SELECT_FLUSH_TIMEOUT=4s"}, quickNet...)

			if r := cli(t, "", env, "activate", "--state-dir", state, hung); r.code != 0 || !strings.Contains(r.stderr, "in the background") {
				t.Fatalf("activate: %d %s", r.code, r.stderr)
			}
			waitFor(t, 5*time.Second, "the background flush takes the lock", func() bool { return flushLockHeld(t, state) })
			start := time.Now()
			waitFor(t, 30*time.Second, "the hung flush releases the lock", func() bool { return !flushLockHeld(t, state) })
			t.Logf("the flush of the hung cache let go after %v", time.Since(start))
			rows := queueEntries(t, state)
			if len(rows) != 1 || rows[0]["attempts"] != float64(1) {
				t.Fatalf("queue after the hung flush: %v", rows)
			}

			if r := cli(t, "", env, "activate", "--state-dir", state, good); r.code != 0 {
				t.Fatalf("activate for the other cache: %d %s", r.code, r.stderr)
			}
			waitFor(t, 60*time.Second, "the other cache gets its push", func() bool {
				return len(checkCacheConsistent(t, goodCache)) == len(closureOf(t, goodPath))
			})
			waitFor(t, 30*time.Second, "the second flush ends", func() bool { return !flushLockHeld(t, state) })
			rows = queueEntries(t, state)
			if len(rows) != 1 || rows[0]["manifestFile"] != hung {
				t.Fatalf("queue holds %v, want only the hung cache's entry", rows)
			}
			if log, _ := os.ReadFile(filepath.Join(state, "push.log")); !strings.Contains(string(log), "stopped") &&
				!strings.Contains(string(log), "no answer from") {
				t.Errorf("push.log does not say why the hung push stopped:\n%s", log)
			}
		})
	}
}

// writeManifestAs writes a manifest under a given name.
func writeManifestAs(t *testing.T, dir, name string, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deadMount makes a file cache whose nix-cache-info is a FIFO nobody
// writes: every push to it blocks in a read, as on a dead network mount.
func deadMount(t *testing.T) string {
	t.Helper()
	cache := filepath.Join(t.TempDir(), "cache")
	if err := os.MkdirAll(filepath.Join(cache, "nar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(cache, "nix-cache-info"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cache
}

// waitExit waits for cmd for up to d; it kills it and fails when it does not end.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), time.Since(start)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, time.Since(start)
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the process was still running %v after the signal", d)
	}
	return 0, 0
}

// TestSignalEndsBlockedPush: a push blocked on a hung file system ends
// within 5 s of SIGTERM or SIGINT, with exactly one "interrupted" line and
// the shell's exit code for the signal, so `systemctl stop` never waits
// for its kill timeout.
func TestSignalEndsBlockedPush(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "single", t.Name())
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		line string
	}{
		{syscall.SIGTERM, 143, "cachix-select: interrupted by SIGTERM"},
		{syscall.SIGINT, 130, "cachix-select: interrupted by SIGINT"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			cache := deadMount(t)
			cmd := exec.Command(binary, "push", "--to", "file://"+cache, app)
			cmd.Env = cleanEnv()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // long enough to be blocked on the FIFO
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code, took := waitExit(t, cmd, 5*time.Second)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.line) {
				t.Errorf("stderr %q, want one line starting %q", stderr.String(), tc.line)
			}
			t.Logf("gone %v after %v: %s", took, tc.sig, lines[0])
		})
	}
}

// flushPIDs lists the processes flushing the queue of a state directory.
func flushPIDs(t *testing.T, state string) []int {
	t.Helper()
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), "queue flush --state-dir "+state+" ") {
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// TestSignalEndsBlockedBackgroundFlush: the background flush that
// activation starts for a cache on a dead mount ends at SIGTERM (what
// systemctl stop and the hook tests send), instead of lingering until
// SIGKILL.
func TestSignalEndsBlockedBackgroundFlush(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "single", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + deadMount(t)},
		"paths": []any{map[string]any{"storePath": app}}})
	if r := cli(t, "", nil, "activate", "--state-dir", state, m); r.code != 0 {
		t.Fatalf("activate: %d %s", r.code, r.stderr)
	}
	var pids []int
	waitFor(t, 10*time.Second, "the background flush starts", func() bool {
		pids = flushPIDs(t, state)
		return len(pids) == 1
	})
	time.Sleep(time.Second) // blocked on the FIFO by now
	start := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the flush is gone after SIGTERM", func() bool { return len(flushPIDs(t, state)) == 0 })
	t.Logf("the background flush was gone %v after SIGTERM", time.Since(start))
	if log, _ := os.ReadFile(filepath.Join(state, "push.log")); !strings.Contains(string(log), "interrupted by SIGTERM") {
		t.Errorf("push.log does not say it was interrupted:\n%s", log)
	}
	if n := queueLen(t, state); n != 1 {
		t.Errorf("%d queued entries after the interrupted flush, want the push still queued", n)
	}
}

// TestSpecialFilesAsInput: a FIFO or /dev/zero as a manifest, and binary
// data on stdin, fail at once with one line and exit code 2, instead of
// blocking or reading until memory runs out.
func TestSpecialFilesAsInput(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "manifest.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"push a FIFO manifest", "", []string{"push", fifo}, 2, "is a FIFO (named pipe), not a regular file"},
		{"check /dev/zero", "", []string{"manifest", "check", "/dev/zero"}, 2, "is a character device, not a regular file"},
		{"strict activate of a FIFO", "", []string{"activate", "--strict", "--state-dir", state, fifo}, 2, "is a FIFO"},
		{"activate of a FIFO", "", []string{"activate", "--state-dir", state, fifo}, 0, "is a FIFO"},
		{"binary stdin", strings.Repeat("\x00", 1<<20), []string{"push", "--to", "file://" + filepath.Join(dir, "c")}, 2,
			"cannot be a store path"},
	}
	for _, tt := range tests {
		start := time.Now()
		r := cli(t, tt.stdin, nil, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and one line saying %q", tt.name, r.code, r.stderr, tt.code, tt.want)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("%s took %v", tt.name, took)
		}
	}
	if n := queueLen(t, state); n != 0 {
		t.Errorf("a FIFO manifest was queued (%d entries)", n)
	}
}

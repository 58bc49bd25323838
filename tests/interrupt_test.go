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

	"github.com/nix-community/go-nix/pkg/narinfo"
)

// TestInterruptedPush kills a large push halfway (SIGKILL, then SIGINT):
// the cache never holds a narinfo whose NAR or references are missing, and
// re-running completes without re-uploading what was finished.
func TestInterruptedPush(t *testing.T) {
	requireNix(t)
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			big := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "40", "--arg", "bigSize", "6000000")
			cache := filepath.Join(t.TempDir(), "cache")
			cacheURL := "file://" + cache

			cmd := exec.Command(binary, "push", "--json", "-j", "2", "--to", cacheURL, big)
			cmd.Env = cleanEnv()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := 0
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var ev map[string]any
				if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "done" {
					if done++; done == 3 {
						if err := cmd.Process.Signal(sig); err != nil {
							t.Fatal(err)
						}
						break
					}
				}
			}
			go func() { _, _ = bufio.NewReader(stdout).WriteTo(devNull{}) }()
			waitErr := make(chan error, 1)
			go func() { waitErr <- cmd.Wait() }()
			select {
			case err = <-waitErr:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the push did not stop within 30s of the signal")
			}
			if err == nil {
				t.Fatal("the push finished before it was interrupted; the test needs a bigger closure")
			}
			if sig == syscall.SIGINT {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
					t.Errorf("after SIGINT: %v, want exit code 130", err)
				}
			}

			published := checkCacheConsistent(t, cache)
			if len(published) < 3 || len(published) >= 41 {
				t.Fatalf("%d narinfos after the interruption; want some but not all", len(published))
			}
			// One line, not a "context canceled" failure per path, counting
			// what was published.
			want := fmt.Sprintf("cachix-select: interrupted by SIGINT after pushing %d of 41 missing paths; running it again pushes the rest\n", len(published))
			if got := stderr.String(); sig == syscall.SIGINT && got != want {
				t.Errorf("stderr after SIGINT: %q, want %q", got, want)
			}

			r := cli(t, "", nil, "push", "--json", "--to", cacheURL, big)
			if r.code != 0 {
				t.Fatalf("re-run failed: %s", r.stderr)
			}
			for _, ev := range jsonLines(t, r.stdout) {
				if ev["event"] == "start" && published[ev["path"].(string)] {
					t.Errorf("re-run re-uploaded %v, which was already published", ev["path"])
				}
			}
			if n := len(checkCacheConsistent(t, cache)); n != 41 {
				t.Fatalf("after the re-run the cache has %d narinfos, want 41", n)
			}
		})
	}
}

// devNull swallows output.
type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

// checkCacheConsistent verifies every narinfo in a file cache: its NAR file
// exists with the recorded size, and every reference has a narinfo. It
// returns the set of published store paths.
func checkCacheConsistent(t *testing.T, cache string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cache, "*.narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]bool{}
	byHash := map[string]bool{}
	var infos []*narinfo.NarInfo
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		ni, err := narinfo.Parse(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s is not a complete narinfo: %v", f, err)
		}
		published[ni.StorePath] = true
		byHash[strings.TrimSuffix(filepath.Base(f), ".narinfo")] = true
		infos = append(infos, ni)
	}
	for _, ni := range infos {
		fi, err := os.Stat(filepath.Join(cache, ni.URL))
		if err != nil || uint64(fi.Size()) != ni.FileSize {
			t.Errorf("%s: NAR %s missing or truncated (%v)", ni.StorePath, ni.URL, err)
		}
		for _, ref := range ni.References {
			if !byHash[ref[:32]] {
				t.Errorf("%s is published but its reference %s is not", ni.StorePath, ref)
			}
		}
	}
	return published
}

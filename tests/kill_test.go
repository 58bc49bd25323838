package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"golang.org/x/sys/unix"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// TestKilledPushesNeverPublishWithoutNar kills file:// pushes with SIGKILL
// at random moments, over and over, some into the same cache and some
// into fresh ones: NARs are written unsynced and the file system is synced
// once per wave of narinfos, and whatever the moment of the kill, every
// narinfo in the cache names a NAR that is complete (its size and SHA-256
// are the narinfo's) and references that are published. The last push of
// each cache completes it. Two closures: 20 incompressible paths of 3 MB,
// and a chain of 400 tiny paths each referring to the one before it.
func TestKilledPushesNeverPublishWithoutNar(t *testing.T) {
	requireNix(t)
	t.Parallel()
	for _, tc := range []struct {
		name  string
		args  []string
		attr  string
		total int
	}{
		{"big", []string{"--arg", "bigCount", "20", "--arg", "bigSize", "3000000"}, "big", 21},
		{"chain", []string{"--arg", "chainCount", "400"}, "chain", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := nixBuild(t, tc.attr, t.Name(), tc.args...)
			// Every other push uploads one path at a time (-j 1), so that
			// narinfos appear one by one over the whole push: with the
			// default 8 jobs they can all appear within a millisecond.
			modes := [][]string{nil, {"-j", "1"}}
			// How long a whole push takes here, in each mode: the kills
			// are spread over it.
			var whole [2]time.Duration
			for m, extra := range modes {
				start := time.Now()
				args := append([]string{"push", "-q", "--to", "file://" + filepath.Join(t.TempDir(), "timing")}, extra...)
				if r := cli(t, "", nil, append(args, root)...); r.code != 0 {
					t.Fatalf("push: %s", r.stderr)
				}
				whole[m] = time.Since(start)
			}
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
			var cache string
			kills, partial, partialBy := 0, 0, [2]int{}
			finish := func() {
				r := cli(t, "", nil, "push", "-q", "--to", "file://"+cache, root)
				if r.code != 0 {
					t.Fatalf("push after the kills: %s", r.stderr)
				}
				if n := len(checkCacheComplete(t, cache)); n != tc.total {
					t.Fatalf("%d narinfos after the push that follows the kills, want %d", n, tc.total)
				}
			}
			for i := 0; i < 16 || (partial == 0 && i < 48); i++ {
				if i%4 == 0 {
					if cache != "" {
						finish()
					}
					cache = filepath.Join(t.TempDir(), "cache")
				}
				m := i % 2
				cmd := exec.Command(binary, append(append([]string{"push", "-q", "--to", "file://" + cache}, modes[m]...), root)...)
				cmd.Env = cleanEnv()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(whole[m]))))
				if cmd.Process.Kill() == nil {
					kills++
				}
				if cmd.Wait() == nil {
					// The push ended before the kill: the timing push was
					// slower than the pushes are now (a busy machine).
					whole[m] = whole[m] * 3 / 4
				}
				if n := len(checkCacheComplete(t, cache)); n > 0 && n < tc.total {
					partial++
					partialBy[m]++
				}
				// Files are written unnamed (O_TMPFILE) where the file
				// system can: a killed push leaves nothing to clean up.
				if unnamedFiles(t, cache) {
					left, _ := filepath.Glob(filepath.Join(cache, ".tmp-*"))
					more, _ := filepath.Glob(filepath.Join(cache, "nar", ".tmp-*"))
					if left = append(left, more...); len(left) > 0 {
						t.Errorf("the killed push left temporary files: %v", left)
					}
				}
			}
			finish()
			t.Logf("%d kills over %v / %v pushes (8 jobs / 1), %d left the cache partly published (%d / %d)", kills,
				whole[0].Round(time.Millisecond), whole[1].Round(time.Millisecond), partial, partialBy[0], partialBy[1])
			if partial == 0 {
				t.Fatal("no kill left a partly published cache; the test proves nothing")
			}
		})
	}
}

// checkCacheComplete is checkCacheConsistent, and each narinfo's NAR file
// has the SHA-256 the narinfo records.
func checkCacheComplete(t *testing.T, cache string) map[string]bool {
	t.Helper()
	published := checkCacheConsistent(t, cache)
	files, _ := filepath.Glob(filepath.Join(cache, "*.narinfo"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ni, err := narinfo.Parse(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		nar, err := os.Open(filepath.Join(cache, ni.URL))
		if err != nil {
			continue // reported by checkCacheConsistent
		}
		h := sha256.New()
		_, err = io.Copy(h, nar)
		nar.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hex.EncodeToString(h.Sum(nil)), ni.FileHash.Format(nixhash.Base16, false); got != want {
			t.Errorf("%s: NAR %s has SHA-256 %s, the narinfo says %s", ni.StorePath, ni.URL, got, want)
		}
	}
	return published
}

// unnamedFiles reports whether dir's file system takes O_TMPFILE.
func unnamedFiles(t *testing.T, dir string) bool {
	t.Helper()
	fd, err := unix.Open(filepath.Dir(dir), unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

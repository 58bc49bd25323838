package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestQuickstartFromAFreshClone runs the README's first command,
// examples/quickstart.sh, verbatim from a fresh clone of the repository,
// twice at the same time with the same $TMPDIR: each run works in a
// directory of its own, pushes, has real Nix substitute back and runs
// the result, and neither touches the other's files.
func TestQuickstartFromAFreshClone(t *testing.T) {
	requireNix(t)
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the quickstart builds cachix-select with Go, which is not installed here")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed here")
	}
	if err := exec.Command("git", "-C", repoRoot(), "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("the repository is not a git checkout here")
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "--quiet", repoRoot(), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v %s", err, out)
	}
	tmp := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("examples/quickstart.sh")
			cmd.Dir = clone
			cmd.Env = append(cleanEnv(), "TMPDIR="+tmp)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			errs[i] = cmd.Run()
			outs[i] = out.String()
		}()
	}
	wg.Wait()
	done := regexp.MustCompile(`== Done: cache in (\S+)/cache, fresh store in (\S+)/fresh-store`)
	seen := map[string]bool{}
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("run %d: %v\n%s", i, errs[i], out)
		}
		m := done.FindStringSubmatch(out)
		if m == nil || m[1] != m[2] || !strings.HasPrefix(m[1], tmp+"/cachix-select-demo.") {
			t.Fatalf("run %d: no \"Done\" line in a directory of its own under $TMPDIR:\n%s", i, out)
		}
		seen[m[1]] = true
		for _, want := range []string{"about a minute", "Pushed 7 paths", "Nothing to push: all 7 paths", "hello from cachix-select"} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d printed no %q:\n%s", i, want, out)
			}
		}
		if _, err := os.Stat(filepath.Join(m[1], "cache", "nix-cache-info")); err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if len(seen) != 2 {
		t.Errorf("the two runs shared a directory: %v", seen)
	}
}

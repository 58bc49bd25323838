package store_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/internal/nixtest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// countingNix puts wrappers of nix and nix-store in a directory that log
// each call to log and run the real tool.
func countingNix(t *testing.T) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	log = filepath.Join(dir, "calls.log")
	for _, name := range []string{"nix", "nix-store"} {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s is not installed", name)
		}
		script := "#!/bin/sh\necho " + name + " >>" + log + "\nexec " + real + ` "$@"` + "\n"
		nixtest.WriteScript(t, filepath.Join(dir, name), script)
	}
	return dir, log
}

// sorted returns its arguments sorted.
func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// calls counts the lines of a countingNix log.
func calls(t *testing.T, log string) int {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestBuildClosuresWithRealNix: the build closure of a derivation with 41
// inputs (20 input derivations, one of them with two outputs, and 20
// sources) whose own output was never built: the used outputs and the
// sources are its seeds, the unused output and what only the inputs were
// built with are not, the unbuilt output is
// counted as not realised, and it takes two Nix processes. An output root
// takes its deriver's inputs and itself; one whose derivation is gone
// falls back to its runtime closure.
func TestBuildClosuresWithRealNix(t *testing.T) {
	bin, log := countingNix(t)
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	fixture := filepath.Join(filepath.Dir(file), "../../tests/fixtures/many-inputs.nix")
	salt := "build-closures-" + t.Name()
	nix := func(tool string, args ...string) []string {
		out, err := nixtest.Output(t.Context(), tool, append([]string{fixture, "--argstr", "salt", salt}, args...)...)
		if err != nil {
			t.Fatalf("%s %v: %v", tool, args, err)
		}
		return strings.Fields(string(out))
	}
	inputs := nix("nix-build", "-A", "inputs", "--no-out-link")
	drv := nix("nix-instantiate", "-A", "top")[0]
	unused := nix("nix-instantiate", "--eval", "-A", "multi.dev.outPath")[0]
	unused = strings.Trim(unused, `"`)
	compiler := strings.Trim(nix("nix-instantiate", "--eval", "-A", "compiler.outPath")[0], `"`)
	if len(inputs) != 21 {
		t.Fatalf("fixture: %d inputs", len(inputs))
	}

	s := &store.Store{Dir: "/nix/store", BinDir: bin}
	got, err := s.BuildClosures(t.Context(), []string{drv})
	if err != nil {
		t.Fatal(err)
	}
	bc := got[drv]
	if bc.Derivation != drv || bc.Problem != "" {
		t.Fatalf("closure: %+v", bc)
	}
	if len(bc.Seeds) != 41 {
		t.Errorf("%d seeds, want 41 (21 outputs, 20 sources): %v", len(bc.Seeds), bc.Seeds)
	}
	for _, p := range inputs {
		if !slices.Contains(bc.Seeds, p) {
			t.Errorf("the input %s is not a seed", p)
		}
	}
	if slices.Contains(bc.Seeds, unused) || slices.Contains(bc.Seeds, compiler) {
		t.Errorf("the unused output %s or the inputs' own input %s is a seed", unused, compiler)
	}
	if len(bc.NotRealised) != 1 || !strings.HasSuffix(bc.NotRealised[0], "-many-inputs-top") {
		t.Errorf("not realised: %v", bc.NotRealised)
	}
	if n := calls(t, log); n != 2 {
		t.Errorf("%d Nix processes, want 2", n)
	}

	// An output as the root: its deriver's inputs (the compiler), and itself.
	out := inputs[0]
	got, err = s.BuildClosures(t.Context(), []string{out})
	if err != nil {
		t.Fatal(err)
	}
	if bc := got[out]; bc.Problem != "" || !strings.HasSuffix(bc.Derivation, "-input-0.drv") || !slices.Equal(bc.Seeds, sorted(out, compiler)) {
		t.Errorf("output root: %+v", bc)
	}
	// A path no derivation built (added with nix-store --add): its
	// runtime closure, and why.
	f := filepath.Join(t.TempDir(), "added-"+salt)
	if err := os.WriteFile(f, []byte(salt), 0o644); err != nil {
		t.Fatal(err)
	}
	addOut, err := nixtest.Output(t.Context(), "nix-store", "--add", f)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.TrimSpace(string(addOut))
	t.Cleanup(func() { _ = exec.Command("nix-store", "--delete", added).Run() })
	got, err = s.BuildClosures(t.Context(), []string{added})
	if err != nil {
		t.Fatal(err)
	}
	if bc := got[added]; !strings.Contains(bc.Problem, "records no derivation") || len(bc.Seeds) != 1 || bc.Seeds[0] != added {
		t.Errorf("no derivation: %+v", bc)
	}
	// Not valid at all: an error naming it.
	gone := "/nix/store/00000000000000000000000000000000-never-built.drv"
	if _, err := s.BuildClosures(t.Context(), []string{gone}); err == nil || !strings.Contains(err.Error(), gone) {
		t.Errorf("invalid root: %v", err)
	}
}

// TestQueryWithinOneProcess: the metadata of 300 paths of a chain, more
// than one command line holds here (the budget is lowered to a few
// paths), comes from one `nix path-info --recursive` of their root, with
// each path's references; Query needs a process per command line.
func TestQueryWithinOneProcess(t *testing.T) {
	bin, log := countingNix(t)
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	fixture := filepath.Join(filepath.Dir(file), "../../tests/fixtures/closure.nix")
	out, err := nixtest.Output(t.Context(), "nix-build", fixture, "-A", "chain", "--no-out-link", "--argstr", "salt", t.Name(),
		"--arg", "chainCount", "300")
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(string(out))
	s := &store.Store{Dir: "/nix/store", BinDir: bin}
	store.SetArgBudget(s, 1000)
	paths, err := s.ClosurePaths(t.Context(), []string{root})
	if err != nil || len(paths) != 300 {
		t.Fatalf("closure: %d paths, %v", len(paths), err)
	}
	missing := paths[:250]
	before := calls(t, log)
	infos, err := s.QueryWithin(t.Context(), missing, []string{root})
	if err != nil {
		t.Fatal(err)
	}
	if n := calls(t, log) - before; n != 1 {
		t.Errorf("QueryWithin took %d Nix processes, want 1", n)
	}
	if len(infos) != len(missing) {
		t.Errorf("%d infos for %d paths", len(infos), len(missing))
	}
	for _, p := range missing {
		if pi := infos[p]; pi == nil || pi.NarSize == 0 || (p != paths[0] && len(pi.References) == 0 && !strings.HasSuffix(p, "-o0")) {
			t.Errorf("%s: %+v", p, pi)
		}
	}
	before = calls(t, log)
	if _, err := s.Query(t.Context(), missing); err != nil {
		t.Fatal(err)
	}
	if n := calls(t, log) - before; n < 10 {
		t.Errorf("Query took %d Nix processes with the lowered budget; the test does not exercise batching", n)
	}
}

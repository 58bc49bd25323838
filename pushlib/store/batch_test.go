package store_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/internal/nixtest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// fakeNix writes nix-store and nix scripts that log each invocation to
// log and answer like Nix would for valid paths without references: the
// closure of each root is the root itself plus one shared dependency.
func fakeNix(t *testing.T, dep string) (binDir, log string) {
	t.Helper()
	binDir = t.TempDir()
	log = filepath.Join(binDir, "calls.log")
	nixStore := `#!/bin/sh
echo "nix-store $#" >>` + log + `
case "$1" in
--query) shift 3; for p in "$@"; do echo "$p"; done; echo ` + dep + ` ;;
--check-validity) ;;
*) exit 1 ;;
esac
`
	nix := `#!/bin/sh
echo "nix $#" >>` + log + `
while [ "$1" != "--" ]; do shift; done; shift
sep='['
for p in "$@"; do
  printf '%s{"path":"%s","narHash":"sha256:1mfznks07wjwjxph30hf85d6pkiigidlpzwdnj8awa6sh4kd7pa5","narSize":8,"references":[]}' "$sep" "$p"
  sep=,
done
echo ']'
`
	for name, text := range map[string]string{"nix-store": nixStore, "nix": nix} {
		nixtest.WriteScript(t, filepath.Join(binDir, name), text)
	}
	return binDir, log
}

// manyPaths makes n distinct, well-formed store paths of a realistic length.
func manyPaths(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/nix/store/%032d-python3.12-package-number-%d", i, i)
	}
	return out
}

// TestManyRootsFewProcesses: 100,000 distinct roots used to go on one
// command line, which the kernel refuses (E2BIG, "argument list too
// long"). The closure, validity and metadata queries now split them into
// command lines the kernel takes, and only a handful of processes run.
func TestManyRootsFewProcesses(t *testing.T) {
	t.Parallel()
	dep := "/nix/store/vd8qd9khb0bf2fk5cqgizp2xicy23dk0-glibc"
	bin, log := fakeNix(t, dep)
	s := &store.Store{Dir: "/nix/store", BinDir: bin}
	roots := manyPaths(100000)

	closure, err := s.ClosurePaths(t.Context(), roots)
	if err != nil {
		t.Fatalf("ClosurePaths: %v", err)
	}
	if len(closure) != len(roots)+1 {
		t.Errorf("closure has %d paths, want %d (the roots and their shared dependency, once)", len(closure), len(roots)+1)
	}
	invalid, err := s.Invalid(t.Context(), roots)
	if err != nil || len(invalid) != 0 {
		t.Errorf("Invalid = %v, %v", invalid, err)
	}
	infos, err := s.Query(t.Context(), roots)
	if err != nil || len(infos) != len(roots) {
		t.Errorf("Query: %d infos, %v", len(infos), err)
	}

	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(data)), "\n")
	// About 6.5 MB of paths in half-MiB command lines: 14 per query.
	if len(calls) > 3*20 {
		t.Errorf("%d Nix processes for 3 queries of 100,000 roots, want a handful each", len(calls))
	}
	t.Logf("%d Nix processes for 3 queries of %d roots", len(calls), len(roots))
}

// TestBatchesWithRealNix runs the batched queries against the real Nix
// store with tiny command lines, so that a few hundred real paths take
// many invocations, and checks the union is exactly right.
func TestBatchesWithRealNix(t *testing.T) {
	if _, err := exec.LookPath("nix-store"); err != nil {
		t.Skip("nix-store is not installed")
	}
	t.Parallel()
	dir := t.TempDir()
	var files []string
	for i := 0; i < 300; i++ {
		f := filepath.Join(dir, fmt.Sprintf("batch-test-%d-%d", os.Getpid(), i))
		if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out, err := nixtest.Output(t.Context(), "nix-store", append([]string{"--add"}, files...)...)
	if err != nil {
		t.Fatalf("nix-store --add: %v", err)
	}
	paths := strings.Fields(string(out))
	t.Cleanup(func() { _ = exec.Command("nix-store", append([]string{"--delete"}, paths...)...).Run() })
	if len(paths) != len(files) {
		t.Fatalf("nix-store --add printed %d paths for %d files", len(paths), len(files))
	}

	s := store.New()
	store.SetArgBudget(s, 2048) // about 25 paths per command line
	closure, err := s.ClosurePaths(t.Context(), paths)
	if err != nil || len(closure) != len(paths) {
		t.Fatalf("ClosurePaths: %d paths, %v", len(closure), err)
	}
	infos, err := s.Query(t.Context(), closure)
	if err != nil || len(infos) != len(paths) {
		t.Fatalf("Query: %d paths, %v", len(infos), err)
	}
	for _, p := range paths {
		if infos[p] == nil || infos[p].NarSize == 0 {
			t.Fatalf("no metadata for %s", p)
		}
	}
	gone := "/nix/store/00000000000000000000000000000000-batch-test-never-built"
	invalid, err := s.Invalid(t.Context(), append(append([]string{}, paths...), gone))
	if err != nil || len(invalid) != 1 || invalid[0] != gone {
		t.Fatalf("Invalid = %v, %v; want just %s", invalid, err, gone)
	}
	if _, err := s.ClosurePaths(t.Context(), append(append([]string{}, paths...), gone)); err == nil ||
		!strings.Contains(err.Error(), gone) {
		t.Fatalf("ClosurePaths with an invalid root: %v", err)
	}
}

package omci_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/internal/nixtest"
	"github.com/cachix-select/cachix-select/pushlib/omci"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// testNixConfig lets the tests build as root in a single-user store with
// no network, unless the caller already configured Nix.
const testNixConfig = "build-users-group =\nsubstituters =\nexperimental-features = nix-command flakes\nsandbox = false"

// requireNix skips the test when Nix is not installed, except in CI
// (CI=true), where a missing Nix is a failure.
func requireNix(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nix-build"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nix-build not found but CI=true: Nix is required here: %v", err)
		}
		t.Skipf("skipping: nix-build not found (%v); set CI=true to make this a failure", err)
	}
}

// TestSystemsFromDerivers builds a real store path and checks its system
// is read back from its deriver; a path with no deriver is refused.
func TestSystemsFromDerivers(t *testing.T) {
	requireNix(t)
	if os.Getenv("NIX_CONFIG") == "" {
		t.Setenv("NIX_CONFIG", testNixConfig)
	}
	ctx := context.Background()
	build := func(expr string) string {
		t.Helper()
		out, err := nixtest.Output(ctx, "nix-build", "--no-out-link", "-E", expr)
		if err != nil {
			t.Fatalf("nix-build: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	built := build(`builtins.derivation { name = "omci-deriver-test"; system = builtins.currentSystem;
		builder = "/bin/sh"; args = [ "-c" "echo omci > $out" ]; }`)
	sysOut, err := nixtest.Output(ctx, "nix-instantiate", "--eval", "--json", "-E", "builtins.currentSystem")
	if err != nil {
		t.Fatal(err)
	}
	system := strings.Trim(strings.TrimSpace(string(sysOut)), `"`)

	st := store.New()
	got, err := omci.SystemsFromDerivers(ctx, st, []string{built})
	if err != nil {
		t.Fatal(err)
	}
	if got[built] != system || len(got) != 1 {
		t.Errorf("SystemsFromDerivers = %v, want %s → %s", got, built, system)
	}

	// A path added with `nix-store --add` has no deriver.
	file := t.TempDir() + "/plain.txt"
	if err := os.WriteFile(file, []byte("no deriver\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	added, err := nixtest.Output(ctx, "nix-store", "--add", file)
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.TrimSpace(string(added))
	_, err = omci.SystemsFromDerivers(ctx, st, []string{built, plain})
	if !errors.Is(err, omci.ErrUnknownSystem) || !strings.Contains(err.Error(), plain+" has no known deriver") {
		t.Errorf("err = %v, want ErrUnknownSystem naming %s", err, plain)
	}

	// Nothing asked, nothing run.
	if got, err := omci.SystemsFromDerivers(ctx, st, nil); err != nil || len(got) != 0 {
		t.Errorf("SystemsFromDerivers(nil) = %v, %v", got, err)
	}
}

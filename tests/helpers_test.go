// Package tests holds the end-to-end tests: the real cachix-select binary
// against the real local Nix store, with real Nix substituting back what was
// pushed. They need `nix` on PATH (tests/run configures it); outside CI they
// skip when it is missing, in CI (CI=true) they fail.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/internal/nixtest"
	"github.com/cachix-select/cachix-select/tests/s3server"
)

// binary is the cachix-select built once for all tests.
var binary string

// TestMain builds cachix-select, or takes the one CACHIX_SELECT_TEST_BINARY
// names (tests/lib/e2e-suite runs these tests inside a root that has no
// Go), and says which Nix the tests use.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cachix-select-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The closures pushes remember are this run's own; the S3 test
	// server stays where tests/lib/s3-server.sh built it, in the user's cache.
	if os.Getenv("CACHIX_SELECT_S3_SERVER") == "" {
		if bin, ok := s3server.Binary(); ok {
			os.Setenv("CACHIX_SELECT_S3_SERVER", bin)
		}
	}
	os.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "xdg-cache"))
	if binary = os.Getenv("CACHIX_SELECT_TEST_BINARY"); binary == "" {
		binary = filepath.Join(dir, "cachix-select")
		build := exec.Command("go", "build", "-o", binary, "-ldflags", "-X main.version=e2e", "./cmd/cachix-select")
		build.Dir = repoRoot()
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building cachix-select:", err)
			os.Exit(1)
		}
	}
	if out, err := exec.Command("nix", "--version").Output(); err == nil {
		fmt.Fprintf(os.Stderr, "end-to-end tests use %s\n", strings.TrimSpace(string(out)))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the directory holding go.mod.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// requireNix skips (or, in CI, fails) when Nix is not available.
func requireNix(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nix-build"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nix is not installed; CI must install it (.ci/run)")
		}
		t.Skip("nix is not installed: skipping end-to-end test (run tests/run, which sets Nix up)")
	}
}

// nixBuild builds attr of fixtures/closure.nix with the given salt and returns its store path.
func nixBuild(t *testing.T, attr, salt string, extra ...string) string {
	t.Helper()
	args := []string{filepath.Join(repoRoot(), "tests/fixtures/closure.nix"), "-A", attr, "--no-out-link",
		"--argstr", "salt", salt}
	args = append(args, extra...)
	out := mustRun(t, "nix-build", args...)
	return strings.TrimSpace(out)
}

// mustRun runs a command and returns its stdout, failing the test on error
// (a Nix command that found the database busy is run again: nixtest).
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := nixtest.Output(context.Background(), name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// result of running the CLI.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs cachix-select with args (and stdin, env additions).
func cli(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	return cliIn(t, "", stdin, env, args...)
}

// cliIn is cli run in the directory dir ("": the test's).
func cliIn(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(cleanEnv(), env...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cachix-select: %v", err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// cleanEnv is the environment without Cachix credentials from the developer's shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CACHIX_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// jsonLines decodes the JSON lines cachix-select --json prints.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		evs = append(evs, m)
	}
	return evs
}

// final returns the "result" object of a --json run.
func final(t *testing.T, out string) map[string]any {
	t.Helper()
	evs := jsonLines(t, out)
	if len(evs) == 0 || evs[len(evs)-1]["event"] != "result" {
		t.Fatalf("no result line in %q", out)
	}
	return evs[len(evs)-1]
}

// count returns the length of a JSON array field.
func count(m map[string]any, field string) int {
	a, _ := m[field].([]any)
	return len(a)
}

// keypair generates a Nix signing key; it returns the secret key file and public key.
func keypair(t *testing.T, name string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	sk := mustRun(t, "nix", "--extra-experimental-features", "nix-command", "key", "generate-secret", "--key-name", name)
	skFile := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(skFile, []byte(sk), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nix", "--extra-experimental-features", "nix-command", "key", "convert-secret-to-public")
	cmd.Stdin = strings.NewReader(sk)
	pk, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return skFile, strings.TrimSpace(string(pk))
}

// substitute has real Nix copy path's closure from cacheURL into a fresh
// store with signatures required; it returns the fresh store's root.
func substitute(t *testing.T, cacheURL, publicKey, path string) (string, error) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command("nix", "--extra-experimental-features", "nix-command", "copy",
		"--from", cacheURL, "--to", root,
		"--option", "require-sigs", "true",
		"--option", "trusted-public-keys", publicKey,
		"--option", "substituters", "",
		path)
	// A private Nix cache dir: Nix remembers binary caches by URL, and test
	// servers reuse ports.
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return root, fmt.Errorf("nix copy: %v\n%s", err, out)
	}
	return root, nil
}

// closureOf lists a path's runtime closure in the local store.
func closureOf(t *testing.T, path string) []string {
	t.Helper()
	return strings.Fields(mustRun(t, "nix-store", "--query", "--requisites", path))
}

// narHashIn returns the NAR hash of path as Nix computes it in the store at root ("" = local).
func narHashIn(t *testing.T, root, path string) string {
	t.Helper()
	args := []string{"--extra-experimental-features", "nix-command", "path-info", "--json"}
	if root != "" {
		args = append(args, "--store", root)
	}
	out := mustRun(t, "nix", append(args, path)...)
	return between(out, `"narHash":"`, `"`)
}

// between extracts the text between two markers.
func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// writeManifest writes a manifest JSON file for a file:// cache.
func writeManifest(t *testing.T, dir string, m map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

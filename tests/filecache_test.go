package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/narstream/narstreamtest"
)

// TestPushManifestThenRealNixSubstitutes is the proof of the engine: a
// closure of real store paths (references, a self-reference, an executable,
// a symlink store path, an empty directory, a single-file store path) is
// pushed from a manifest into a file:// cache, and real Nix copies it into a
// fresh store with signatures required.
func TestPushManifestThenRealNixSubstitutes(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	closure := closureOf(t, app)
	if len(closure) != 7 {
		t.Fatalf("fixture closure has %d paths, want 7: %v", len(closure), closure)
	}
	skFile, pk := keypair(t, "e2e-test-1")
	dir := t.TempDir()
	cacheURL := "file://" + filepath.Join(dir, "cache")
	m := writeManifest(t, dir, map[string]any{
		"version": 1,
		"cache":   map[string]any{"url": cacheURL, "signingKeyFile": skFile},
		"paths":   []any{map[string]any{"name": "app", "storePath": app}},
		"origin":  "manual",
	})

	r := cli(t, "", nil, "push", "--json", m)
	if r.code != 0 {
		t.Fatalf("push failed (%d): %s", r.code, r.stderr)
	}
	res := final(t, r.stdout)
	if count(res, "pushed") != 7 || res["present"].(float64) != 0 {
		t.Fatalf("want 7 pushed, 0 present: %v", res)
	}

	root, err := substitute(t, cacheURL, pk, app)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range closure {
		if got, want := narHashIn(t, root, p), narHashIn(t, "", p); got != want || got == "" {
			t.Errorf("%s: substituted narHash %q, local %q", p, got, want)
		}
	}
	// Contents, executable bit and symlinks survived.
	exe := filepath.Join(root, strings.TrimPrefix(app, "/"), "bin/hello")
	target, err := os.Readlink(exe)
	if err != nil || !strings.HasSuffix(target, "-exe/bin/hello") {
		t.Fatalf("bin/hello symlink: %q, %v", target, err)
	}
	realExe := filepath.Join(root, strings.TrimPrefix(target, "/"))
	fi, err := os.Stat(realExe)
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("executable lost its mode: %v %v", fi, err)
	}
	if out, err := os.ReadFile(realExe); err != nil || !strings.Contains(string(out), "hello from cachix-select") {
		t.Fatalf("content: %q %v", out, err)
	}

	// A second push of the same manifest uploads nothing.
	narsBefore := countFiles(t, filepath.Join(dir, "cache", "nar"))
	r = cli(t, "", nil, "push", "--json", m)
	if r.code != 0 {
		t.Fatalf("second push failed: %s", r.stderr)
	}
	res = final(t, r.stdout)
	if count(res, "pushed") != 0 || res["present"].(float64) != 7 {
		t.Fatalf("second push: %v", res)
	}
	for _, ev := range jsonLines(t, r.stdout) {
		if ev["event"] == "start" {
			t.Errorf("second push started an upload: %v", ev)
		}
	}
	if n := countFiles(t, filepath.Join(dir, "cache", "nar")); n != narsBefore {
		t.Errorf("nar/ went from %d to %d files", narsBefore, n)
	}

	// A wrong key is refused by real Nix: the signature really is checked.
	_, otherPK := keypair(t, "e2e-test-1")
	if _, err := substitute(t, cacheURL, otherPK, app); err == nil {
		t.Error("nix accepted the cache with an unrelated public key")
	}
}

// TestLargeNARInFramesSubstitutes: a compressible NAR past the size from
// which a NAR is compressed on both cores is written as a stream of
// several independent zstd frames, and real Nix substitutes it (the e2e
// suite runs this under Nix 2.8, 2.26 and 2.34: each reads the frames one
// after the other as one stream).
func TestLargeNARInFramesSubstitutes(t *testing.T) {
	requireNix(t)
	if runtime.NumCPU() < 2 {
		t.Skip("one core: no NAR is compressed in frames")
	}
	t.Parallel()
	text := nixBuild(t, "text", t.Name())
	skFile, pk := keypair(t, "frames-test-1")
	dir := t.TempDir()
	cacheURL := "file://" + filepath.Join(dir, "cache")
	if r := cli(t, "", nil, "push", "-q", "--to", cacheURL, "--signing-key-file", skFile, text); r.code != 0 {
		t.Fatalf("push failed (%d): %s", r.code, r.stderr)
	}
	nars, err := filepath.Glob(filepath.Join(dir, "cache", "nar", "*.nar.zst"))
	if err != nil || len(nars) != 1 {
		t.Fatalf("NAR files %v (%v), want one", nars, err)
	}
	b, err := os.ReadFile(nars[0])
	if err != nil {
		t.Fatal(err)
	}
	frames, err := narstreamtest.ZstdFrames(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) < 4 {
		t.Fatalf("the %d-byte NAR file holds %d zstd frames, want at least 4 (4 MiB each)", len(b), len(frames))
	}
	root, err := substitute(t, cacheURL, pk, text)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := narHashIn(t, root, text), narHashIn(t, "", text); got != want || got == "" {
		t.Errorf("substituted narHash %q, local %q", got, want)
	}
	got, err := os.ReadFile(filepath.Join(root, strings.TrimPrefix(text, "/"), "data"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(text, "data"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("substituted data: %d bytes, local %d (%v)", len(got), len(want), err)
	}
}

// TestPushPathsXZAndCachixFormKey pushes ad-hoc paths (a ./result symlink and
// a path inside a store path, via stdin) with xz and a bare Cachix-form key.
func TestPushPathsXZAndCachixFormKey(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	dir := t.TempDir()
	result := filepath.Join(dir, "result")
	mustRun(t, "nix-build", filepath.Join(repoRoot(), "tests/fixtures/closure.nix"), "-A", "lib", "--argstr", "salt", salt, "-o", result)
	exe := nixBuild(t, "exe", salt)
	skFile, pk := keypair(t, "bare-1")
	sk, _ := os.ReadFile(skFile)
	bare := filepath.Join(dir, "cachix.key")
	if err := os.WriteFile(bare, []byte(strings.SplitN(strings.TrimSpace(string(sk)), ":", 2)[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheURL := "file://" + filepath.Join(dir, "cache")

	// Without a name, a bare key is refused clearly.
	r := cli(t, result+"\n", nil, "push", "--to", cacheURL, "--signing-key-file", bare)
	if r.code != 2 || !strings.Contains(r.stderr, "--signing-key-name") {
		t.Fatalf("bare key without a name: code %d, %s", r.code, r.stderr)
	}
	r = cli(t, result+"\n"+exe+"/bin/hello\n", nil, "push", "--json", "-m", "xz", "--to", cacheURL,
		"--signing-key-file", bare, "--signing-key-name", "bare-1")
	if r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	if n := count(final(t, r.stdout), "pushed"); n != 4 {
		t.Fatalf("pushed %d paths, want 4 (lib, single, selfref, exe)", n)
	}
	nars, _ := filepath.Glob(filepath.Join(dir, "cache", "nar", "*.nar.xz"))
	if len(nars) != 4 {
		t.Fatalf("want 4 .nar.xz files, got %v", nars)
	}
	target, _ := os.Readlink(result)
	for _, p := range []string{target, exe} {
		if _, err := substitute(t, cacheURL, pk, p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDryRunReportsAndUploadsNothing checks --dry-run against a half-filled cache.
func TestDryRunReportsAndUploadsNothing(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	lib := nixBuild(t, "lib", salt)
	app := nixBuild(t, "app", salt)
	cacheURL := "file://" + filepath.Join(t.TempDir(), "cache")
	if r := cli(t, "", nil, "push", "-q", "--to", cacheURL, lib); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := cli(t, "", nil, "push", "--dry-run", "--to", cacheURL, app)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if !strings.Contains(r.stderr, "Would push 4 paths") || !strings.Contains(r.stderr, "3 of 7 already present") ||
		!strings.Contains(r.stderr, app) {
		t.Fatalf("dry-run output:\n%s", r.stderr)
	}
	r = cli(t, "", nil, "push", "--dry-run", "--json", "--to", cacheURL, app)
	res := final(t, r.stdout)
	if count(res, "missing") != 4 || count(res, "pushed") != 0 || res["dryRun"] != true {
		t.Fatalf("dry-run JSON: %v", res)
	}
	if r := cli(t, "", nil, "push", "--json", "--to", cacheURL, app); count(final(t, r.stdout), "pushed") != 4 {
		t.Fatalf("the dry run must not have uploaded anything: %s", r.stdout)
	}
	// With everything present a dry run says so once.
	r = cli(t, "", nil, "push", "--dry-run", "--to", cacheURL, app)
	oneLine(t, "dry run, all present", r.stderr, "Nothing to push: all 7 paths are already in "+cacheURL)
}

// countFiles counts the entries of a directory.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

package cachixserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// nixConfig is the single-user, no-sandbox setup the test machine needs.
const nixConfig = "build-users-group =\nsubstituters =\nexperimental-features = nix-command flakes\nsandbox = false"

// requireNix skips the test when nix is absent, unless CI=true, where a
// missing nix is a failure.
func requireNix(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nix"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nix is not installed, and CI=true forbids skipping the real-Nix test: %v", err)
		}
		t.Skip("skipping the real-Nix test: nix is not installed (set CI=true to make this a failure)")
	}
}

// nixEnv runs Nix commands single-user with a private cache directory.
type nixEnv struct {
	t   *testing.T
	env []string
}

// newNixEnv prepares the environment for Nix commands.
func newNixEnv(t *testing.T) nixEnv {
	return nixEnv{t: t, env: append(os.Environ(), "NIX_CONFIG="+nixConfig, "XDG_CACHE_HOME="+t.TempDir())}
}

// run runs a Nix command and returns its stdout, or the error with stderr.
func (n nixEnv) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = n.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &nixError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return out, nil
}

// must runs a Nix command that has to succeed.
func (n nixEnv) must(name string, args ...string) []byte {
	n.t.Helper()
	out, err := n.run(name, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// nixError carries a failed Nix command's stderr.
type nixError struct {
	cmd, stderr string
	err         error
}

// Error describes the failed command.
func (e *nixError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.stderr }

// testDrv builds two store paths: top refers to dep; dep has a symlink.
const testDrv = `{ salt }:
let
  dep = builtins.derivation {
    name = "cts-dep";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "mkdir -p $out/share; echo dep-${salt} > $out/share/data; ln -s data $out/share/link" ];
    PATH = "/usr/bin:/bin";
  };
in builtins.derivation {
  name = "cts-top";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "mkdir -p $out/bin; printf '#!/bin/sh\\necho top ${dep}\\n' > $out/bin/hello; chmod +x $out/bin/hello; echo ${dep} > $out/ref" ];
  PATH = "/usr/bin:/bin";
}
`

// query runs nix-store --query with one flag on one path and returns the
// lines of its output. nix-store --query prints the same on every Nix
// (2.8, 2.26, Lix), unlike nix path-info --json, whose shape changed.
func (n nixEnv) query(flag, path string) []string {
	n.t.Helper()
	return strings.Fields(string(n.must("nix-store", "--query", flag, path)))
}

// buildAndDump builds the test derivation and returns each path of the
// closure as a testPath made from nix-store --dump, top first.
func buildAndDump(t *testing.T, n nixEnv) []testPath {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "drv.nix"), []byte(testDrv), 0o600); err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSpace(string(n.must("nix-build", filepath.Join(dir, "drv.nix"), "--argstr", "salt", randomHash(t), "--no-out-link")))
	closure := n.query("--requisites", top)
	if len(closure) != 2 {
		t.Fatalf("closure of %s has %d paths: %q", top, len(closure), closure)
	}
	var out []testPath
	for _, path := range closure {
		narBytes := n.must("nix-store", "--dump", path)
		base := strings.TrimPrefix(path, "/nix/store/")
		p := testPath{hash: base[:32], name: base[33:], nar: narBytes, comp: "zst", deriver: "unknown-deriver"}
		// Cross-check our own NAR hash and size with Nix's record.
		sum := sha256.Sum256(narBytes)
		want := "sha256:" + nixbase32.EncodeToString(sum[:])
		if got, size := n.query("--hash", path), n.query("--size", path); len(got) != 1 || got[0] != want ||
			len(size) != 1 || size[0] != strconv.Itoa(len(narBytes)) {
			t.Fatalf("%s: dumped NAR %s/%d, nix-store says %q/%q", path, want, len(narBytes), got, size)
		}
		for _, r := range n.query("--references", path) {
			p.refs = append(p.refs, strings.TrimPrefix(r, "/nix/store/"))
		}
		if d := n.query("--deriver", path); len(d) == 1 && d[0] != "unknown-deriver" {
			p.deriver = strings.TrimPrefix(d[0], "/nix/store/")
		}
		if path == top {
			p.compressed = compressZstd(t, narBytes)
			out = append([]testPath{p}, out...)
		} else {
			p.compressed, p.comp = compressXZ(t, narBytes), "xz"
			out = append(out, p)
		}
	}
	return out
}

// checkCopied compares the files of a path in a chroot store with the originals.
func checkCopied(t *testing.T, root string, paths []testPath) {
	t.Helper()
	for _, rel := range []string{"bin/hello", "ref"} {
		want, err := os.ReadFile(filepath.Join(paths[0].path(), rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, paths[0].path(), rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the fresh store: %q, %v; want %q", rel, got, err, want)
		}
	}
	fi, err := os.Stat(filepath.Join(root, paths[0].path(), "bin/hello"))
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("bin/hello is not executable in the fresh store: %v %v", fi, err)
	}
	link, err := os.Readlink(filepath.Join(root, paths[1].path(), "share/link"))
	if err != nil || link != "data" {
		t.Errorf("dep's symlink in the fresh store: %q, %v", link, err)
	}
}

// TestRealNixSubstitutes pushes a real closure (zstd and xz) through the
// multipart flow and has real Nix copy it into a fresh store from the
// binary-cache view with signatures required, for a managed cache, a
// self-signed cache and a private cache reached through netrc.
func TestRealNixSubstitutes(t *testing.T) {
	requireNix(t)
	t.Parallel()
	n := newNixEnv(t)
	paths := buildAndDump(t, n)
	top := paths[0]

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "managed", Public: true, WriteTokens: []string{"W"}},
		{Name: "selfsigned", Public: true, WriteTokens: []string{"W"}, SelfSigned: true, PublicKey: base64.StdEncoding.EncodeToString(pub)},
		{Name: "private", WriteTokens: []string{"W"}, ReadTokens: []string{"READTOKEN"}},
	}})
	c := client{t: t, base: srv.URL(), token: "W"}
	for _, cache := range []string{"managed", "selfsigned", "private"} {
		for _, p := range paths { // top first: hidden until dep arrives
			var sig any
			if cache == "selfsigned" {
				sig = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(p.fingerprint())))
			}
			c.push(cache, p, sig)
		}
	}

	copyInto := func(t *testing.T, cache, trusted string, extra ...string) (string, error) {
		root := filepath.Join(t.TempDir(), "store")
		args := append([]string{"copy", "--from", srv.BinaryCacheURL(cache), "--to", root,
			"--option", "require-sigs", "true", "--option", "trusted-public-keys", trusted}, extra...)
		_, err := n.run("nix", append(args, top.path())...)
		return root, err
	}

	t.Run("managed", func(t *testing.T) {
		t.Parallel()
		root, err := copyInto(t, "managed", srv.ManagedPublicKey("managed"))
		if err != nil {
			t.Fatal(err)
		}
		checkCopied(t, root, paths)
		n.must("nix", "store", "verify", "--store", root, "--recursive",
			"--option", "trusted-public-keys", srv.ManagedPublicKey("managed"), top.path())
	})
	t.Run("managed with a wrong key is refused", func(t *testing.T) {
		t.Parallel()
		other, _, _ := ed25519.GenerateKey(rand.Reader)
		// Every Nix words the refusal differently ("lacks a valid
		// signature", "lacks a signature by a trusted key"): what counts is
		// that it failed and that the path is not in the fresh store.
		root, err := copyInto(t, "managed", "managed.cachix.org-1:"+base64.StdEncoding.EncodeToString(other))
		if err == nil {
			t.Fatal("nix copy with an untrusted key succeeded")
		}
		if _, statErr := os.Lstat(filepath.Join(root, top.path())); statErr == nil {
			t.Fatalf("nix copy with an untrusted key failed (%v) but left %s in the fresh store", err, top.path())
		}
		if _, vErr := n.run("nix-store", "--store", root, "--check-validity", top.path()); vErr == nil {
			t.Fatalf("nix copy with an untrusted key failed (%v) but %s is valid in the fresh store", err, top.path())
		}
	})
	t.Run("self-signed", func(t *testing.T) {
		t.Parallel()
		root, err := copyInto(t, "selfsigned", srv.PublicKey("selfsigned"))
		if err != nil {
			t.Fatal(err)
		}
		checkCopied(t, root, paths)
	})
	t.Cleanup(func() {
		// Three successful copies of two paths each; the refused ones may
		// or may not download before checking the signature.
		if st := srv.Stats(); st.NarDownloads < 6 {
			t.Errorf("Nix downloaded %d NARs, want at least 6", st.NarDownloads)
		}
	})
	t.Run("private via netrc", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		netrc := filepath.Join(t.TempDir(), "netrc")
		if err := os.WriteFile(netrc, []byte("machine "+u.Hostname()+"\npassword READTOKEN\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := copyInto(t, "private", srv.ManagedPublicKey("private")); err == nil {
			t.Fatal("nix copied from a private cache without credentials")
		}
		root, err := copyInto(t, "private", srv.ManagedPublicKey("private"), "--option", "netrc-file", netrc)
		if err != nil {
			t.Fatal(err)
		}
		checkCopied(t, root, paths)
	})
}

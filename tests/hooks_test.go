package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// TestActivateRootGeneration: --root pushes a path the manifest does not
// list (the generation being activated) with its closure, pins it with
// --root-pin and its keep policy, keeps it in the queue entry while the
// cache is down, and records it, so the next activation is silent.
func TestActivateRootGeneration(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "generation-token-5e1"
	srv := pinServer(t, token)
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	gen := nixBuild(t, "lib", salt) // stands for the generation: not in the manifest
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	m := writeManifest(t, dir, map[string]any{"version": 1,
		"cache": map[string]any{"name": "pins", "host": srv.URL(), "authTokenFile": tokenFile(t, token)},
		"paths": []any{map[string]any{"storePath": app}}})
	// A symlink to the generation, as /run/current-system is, is resolved.
	link := filepath.Join(dir, "current-generation")
	if err := os.Symlink(gen, link); err != nil {
		t.Fatal(err)
	}
	rootFlags := []string{"--root", link, "--root-pin", "laptop-x86_64-linux-generation", "--root-keep-revisions", "2"}

	// The cache is down: the entry is queued with the root in it.
	srv.SetFaultRate(1)
	args := append([]string{"activate", "--mode", "foreground", "--timeout", "3s", "--state-dir", state}, rootFlags...)
	if r := cli(t, "", nil, append(args, m)...); r.code != 0 {
		t.Fatalf("activate with the cache down: %d %s", r.code, r.stderr)
	}
	if out := cli(t, "", nil, "queue", "list", "--json", "--state-dir", state).stdout; !strings.Contains(out, gen) {
		t.Fatalf("the queued entry lost the generation: %s", out)
	}
	srv.SetFaultRate(0)
	if r := cli(t, "", nil, "queue", "flush", "--state-dir", state); r.code != 0 {
		t.Fatalf("flush: %d %s", r.code, r.stderr)
	}
	p := serverPins(srv)["laptop-x86_64-linux-generation"]
	if lastPath(p) != gen || p.Keep == nil || p.Keep.Tag != "Revisions" || p.Keep.Contents != 2 {
		t.Fatalf("generation pin: %+v (want %s, 2 revisions)", p, gen)
	}
	have := map[string]bool{}
	for _, ni := range srv.StorePaths("pins") {
		have[ni.StorePath] = true
	}
	for _, q := range append(closureOf(t, gen), closureOf(t, app)...) {
		if !have[q] {
			t.Errorf("%s (closure of the generation or the package) is not in the cache", q)
		}
	}
	// Recorded: the same activation again is silent and costs no request.
	srv.ResetStats()
	if r := cli(t, "", nil, append(args, m)...); r.code != 0 || r.stderr != "" {
		t.Fatalf("second activation: %d %q", r.code, r.stderr)
	}
	n := 0
	for _, c := range srv.Stats().Requests {
		n += c
	}
	if n != 0 {
		t.Errorf("a no-op activation made %d requests", n)
	}
	// Bad --root flags are bad input, with --strict exit 2.
	for _, bad := range [][]string{
		{"--root", "/nix/store/not-a-store-path"},
		{"--root", "/nix/store/00000000000000000000000000000000-gone"},
		{"--root", gen, "--root-keep-days", "3"},
		{"--root", gen, "--root-pin", "p", "--root-keep-days", "3", "--root-keep-forever"},
	} {
		r := cli(t, "", nil, append(append([]string{"activate", "--strict", "--state-dir", state}, bad...), m)...)
		if r.code != 2 {
			t.Errorf("activate %v: code %d, %s", bad, r.code, r.stderr)
		}
	}
}

// TestActivateConfigFile: with the token only in a cachix.dhall given by
// --config (not in the manifest, the environment or ~/.config), activate
// and queue flush push.
func TestActivateConfigFile(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "config-file-token-93c"
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "cfg", WriteTokens: []string{token}}}})
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	conf := filepath.Join(dir, "secrets", "cachix.dhall")
	os.MkdirAll(filepath.Dir(conf), 0o700)
	dh := "{ authToken = \"" + token + "\", hostname = \"" + srv.URL() + "\", binaryCaches = [] : List { name : Text, secretKey : Text } }\n"
	if err := os.WriteFile(conf, []byte(dh), 0o600); err != nil {
		t.Fatal(err)
	}
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"name": "cfg"},
		"paths": []any{map[string]any{"storePath": app}}})
	env := []string{"HOME=" + filepath.Join(dir, "home"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	state := filepath.Join(dir, "state")
	// Without --config the token is nowhere: the push stays queued.
	if r := cli(t, "", env, "activate", "--mode", "foreground", "--state-dir", state, m); r.code != 0 || !strings.Contains(r.stderr, "stays queued") {
		t.Fatalf("activate without a token: %d %s", r.code, r.stderr)
	}
	if r := cli(t, "", env, "queue", "flush", "--config", conf, "--state-dir", state); r.code != 0 {
		t.Fatalf("queue flush --config: %d %s", r.code, r.stderr)
	}
	noSecrets(t, cli(t, "", env, "queue", "list", "--state-dir", state), token)
	if n := len(srv.StorePaths("cfg")); n != 7 {
		t.Fatalf("the cache holds %d paths, want 7", n)
	}
	// activate --config works the same in foreground mode.
	exe := nixBuild(t, "exe", t.Name()+"-2")
	m2 := writeManifest(t, t.TempDir(), map[string]any{"version": 1, "cache": map[string]any{"name": "cfg"},
		"paths": []any{map[string]any{"storePath": exe}}})
	r := cli(t, "", env, "activate", "--strict", "--mode", "foreground", "--config", conf, "--state-dir", state, m2)
	if r.code != 0 {
		t.Fatalf("activate --config: %d %s", r.code, r.stderr)
	}
	noSecrets(t, r, token)
}

// TestActivateRestartList: in NixOS's background mode activate queues and
// appends the unit to the restart list instead of starting anything; it
// lists nothing while a flush runs, and when a credential the unit would
// load is missing it warns in one line and leaves the push queued; it
// never starts a detached push.
func TestActivateRestartList(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	list := filepath.Join(dir, "run", "nixos", "activation-restart-list")
	cache := "file://" + filepath.Join(dir, "cache")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": cache},
		"paths": []any{map[string]any{"storePath": app}}})
	nixos := []string{"activate", "--systemd-unit", "cachix-select.service", "--restart-list", list, "--state-dir", state}

	r := cli(t, "", nil, append(nixos, m)...)
	got, _ := os.ReadFile(list)
	if r.code != 0 || string(got) != "cachix-select.service\n" || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 ||
		!strings.Contains(r.stderr, "cachix-select.service once systemd has reloaded") {
		t.Fatalf("activate: %d %q; list %q", r.code, r.stderr, got)
	}
	// Listed twice, started once: switch-to-configuration ignores duplicates.
	if r := cli(t, "", nil, append(nixos, m)...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(state, "push.log")); err == nil {
		t.Error("a detached push was started")
	}
	if e := cli(t, "", nil, "queue", "list", "--json", "--state-dir", state).stdout; !strings.Contains(e, `"attempts": 0`) {
		t.Errorf("the entry was tried by someone: %s", e)
	}
	os.Remove(list)

	// While a flush holds the lock: nothing listed, the running one takes it.
	f, err := os.OpenFile(filepath.Join(state, "flush.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lockFile(t, f)
	r = cli(t, "", nil, append(nixos, m)...)
	f.Close()
	if _, err := os.Stat(list); err == nil || !strings.Contains(r.stderr, "a push already running will take it") {
		t.Errorf("with a flush running: %q, list exists: %v", r.stderr, err == nil)
	}

	// A credential the unit would load is missing: one warning, not listed.
	missing := filepath.Join(dir, "no-such-token")
	m2 := writeManifest(t, t.TempDir(), map[string]any{"version": 1,
		"cache": map[string]any{"url": cache + "2", "authTokenFile": missing},
		"paths": []any{map[string]any{"storePath": app}}})
	r = cli(t, "", nil, append(nixos, m2)...)
	if r.code != 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, missing+" cannot be read") ||
		!strings.Contains(r.stderr, "stays queued") {
		t.Errorf("missing credential: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(list); err == nil {
		t.Error("the unit was listed although it would not start")
	}
	if r := cli(t, "", nil, append(append(nixos, "--strict", "--config", missing), m)...); r.code == 0 {
		t.Error("--strict: a missing --config credential must fail")
	}
	// --restart-list without --systemd-unit is bad usage.
	if r := cli(t, "", nil, "activate", "--strict", "--restart-list", list, "--state-dir", state, m2); r.code != 2 {
		t.Errorf("--restart-list alone: %d %s", r.code, r.stderr)
	}
}

// TestStateDirRule: without --state-dir, activate (as a shellHook calls it)
// queues in $XDG_STATE_HOME/cachix-select, else
// ~/.local/state/cachix-select, for root too, and queue list and flush of
// the same user find it there.
func TestStateDirRule(t *testing.T) {
	requireNix(t)
	t.Parallel()
	app := nixBuild(t, "app", t.Name())
	dir := t.TempDir()
	parent := filepath.Join(dir, "later")
	m := writeManifest(t, dir, map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + filepath.Join(parent, "cache")},
		"paths": []any{map[string]any{"storePath": app}}})
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"XDG_STATE_HOME", []string{"HOME=" + filepath.Join(dir, "h1"), "XDG_STATE_HOME=" + filepath.Join(dir, "xdg")}, filepath.Join(dir, "xdg", "cachix-select")},
		{"HOME", []string{"HOME=" + filepath.Join(dir, "h2"), "XDG_STATE_HOME="}, filepath.Join(dir, "h2", ".local", "state", "cachix-select")},
	} {
		if r := cli(t, "", c.env, "activate", "--mode", "foreground", "--timeout", "30s", m); r.code != 0 {
			t.Fatalf("%s: activate: %d %s", c.name, r.code, r.stderr)
		}
		if n := queueLen(t, c.want); n != 1 {
			t.Fatalf("%s: %d entries in %s, want 1", c.name, n, c.want)
		}
		r := cli(t, "", c.env, "queue", "list")
		if r.code != 0 || !strings.Contains(r.stdout, c.want) || !strings.Contains(r.stdout, "file://"+filepath.Join(parent, "cache")) {
			t.Errorf("%s: queue list (uid %d) does not show %s: %s", c.name, os.Geteuid(), c.want, r.stdout)
		}
	}
	os.MkdirAll(parent, 0o755)
	env := []string{"HOME=" + filepath.Join(dir, "h2"), "XDG_STATE_HOME="}
	if r := cli(t, "", env, "queue", "flush"); r.code != 0 {
		t.Fatalf("queue flush: %d %s", r.code, r.stderr)
	}
	if n := queueLen(t, filepath.Join(dir, "h2", ".local", "state", "cachix-select")); n != 0 {
		t.Errorf("queue flush without --state-dir left %d entries", n)
	}
}

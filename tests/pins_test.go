package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// pinServer starts a public cache "pins" that accepts token.
func pinServer(t *testing.T, token string) *cachixserver.Server {
	t.Helper()
	return startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "pins", Public: true, WriteTokens: []string{token}},
	}})
}

// serverPins maps pin names to their latest store path and keep policy.
func serverPins(srv *cachixserver.Server) map[string]cachixserver.Pin {
	out := map[string]cachixserver.Pin{}
	for _, p := range srv.Pins("pins") {
		out[p.Name] = p
	}
	return out
}

func lastPath(p cachixserver.Pin) string {
	if len(p.Revisions) == 0 {
		return ""
	}
	return p.Revisions[len(p.Revisions)-1].StorePath
}

// TestPinCommand: `pin` sends the protocol's body (name, full store path,
// artifacts, tagged keep) for a path in the cache, and refuses clearly a
// path the cache lacks, conflicting keep flags and plain binary caches.
func TestPinCommand(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "pin-token-18ab"
	srv := pinServer(t, token)
	exe := nixBuild(t, "exe", t.Name())
	single := nixBuild(t, "single", t.Name())
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	if r := cli(t, "", env, "push", "--host", srv.URL(), "--cache", "pins", exe); r.code != 0 {
		t.Fatal(r.stderr)
	}
	result := filepath.Join(t.TempDir(), "result")
	os.Symlink(exe, result)
	r := cli(t, "", env, "pin", "--host", srv.URL(), "--cache", "pins", "--keep-revisions", "3", "--artifact", "bin/hello", "release", result)
	if r.code != 0 {
		t.Fatalf("pin: %d %s", r.code, r.stderr)
	}
	// The cachix-style positional form, keep forever.
	if r := cli(t, "", env, "pin", "--host", srv.URL(), "--keep-forever", "pins", "forever-pin", exe); r.code != 0 {
		t.Fatalf("pin CACHE NAME PATH: %d %s", r.code, r.stderr)
	}
	got := serverPins(srv)
	rel := got["release"]
	if lastPath(rel) != exe || rel.Keep == nil || rel.Keep.Tag != "Revisions" || rel.Keep.Contents != 3 {
		t.Fatalf("release pin: %+v", rel)
	}
	if arts := rel.Revisions[len(rel.Revisions)-1].Artifacts; len(arts) != 1 || arts[0] != "bin/hello" {
		t.Errorf("artifacts: %v", arts)
	}
	if f := got["forever-pin"]; f.Keep == nil || f.Keep.Tag != "Forever" {
		t.Errorf("forever pin: %+v", f)
	}

	bad := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--cache", "pins", "p", single}, 1, "is not in Cachix cache pins; push it first"},
		{[]string{"--cache", "pins", "--keep-days", "2", "--keep-forever", "p", exe}, 2, "at most one"},
		{[]string{"--cache", "pins", "--artifact", "bin/nope", "p", exe}, 2, "bin/nope"},
		{[]string{"--to", "file:///tmp/x", "p", exe}, 2, "pins are a Cachix feature"},
		{[]string{"--cache", "pins", "p", "/nix/store/00000000000000000000000000000000-gone"}, 2, "not a valid path"},
	}
	for _, b := range bad {
		r := cli(t, "", env, append([]string{"pin", "--host", srv.URL()}, b.args...)...)
		if r.code != b.code || !strings.Contains(r.stderr, b.want) {
			t.Errorf("pin %v: code %d, %q; want %d, %q", b.args, r.code, r.stderr, b.code, b.want)
		}
	}
	if len(serverPins(srv)) != 2 {
		t.Errorf("refused pins reached the server: %v", serverPins(srv))
	}
}

// TestManifestPinsOnlyAfterUpload: a manifest pin is created once its
// path's closure is in the cache, and never for a path whose upload failed.
func TestManifestPinsOnlyAfterUpload(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "manifest-pin-token"
	srv := pinServer(t, token)
	lib := nixBuild(t, "lib", t.Name())
	exe := nixBuild(t, "exe", t.Name())
	srv.RejectPath(filepath.Base(exe)[:32]) // every completion of exe fails
	dir := t.TempDir()
	m := writeManifest(t, dir, map[string]any{
		"version": 1,
		"cache":   map[string]any{"name": "pins", "host": srv.URL(), "authTokenFile": tokenFile(t, token)},
		"paths": []any{
			map[string]any{"storePath": lib, "pin": map[string]any{"name": "lib-pin", "keep": map[string]any{"days": 7}}},
			map[string]any{"storePath": exe, "pin": map[string]any{"name": "exe-pin", "keep": "forever"}},
		},
	})
	r := cli(t, "", nil, "push", "--json", m)
	if r.code != 1 {
		t.Fatalf("a push with a failing path must exit 1: %d %s", r.code, r.stderr)
	}
	got := serverPins(srv)
	if _, ok := got["exe-pin"]; ok {
		t.Fatal("a pin was created for a path whose upload failed")
	}
	lp := got["lib-pin"]
	if lastPath(lp) != lib || lp.Keep == nil || lp.Keep.Tag != "Days" || lp.Keep.Contents != 7 {
		t.Fatalf("lib-pin: %+v", lp)
	}
	res := final(t, r.stdout)
	if count(res, "pinned") != 1 || count(res, "failed") != 1 {
		t.Errorf("result: %v", res)
	}
	// The failure cleared: the next push uploads exe and pins it.
	srv.UnrejectPath(filepath.Base(exe)[:32])
	if r := cli(t, "", nil, "push", m); r.code != 0 {
		t.Fatalf("re-push: %s", r.stderr)
	}
	if lastPath(serverPins(srv)["exe-pin"]) != exe {
		t.Error("exe-pin missing after the successful re-push")
	}
	// Pushing again adds no revision to pins that already point there.
	revs := len(serverPins(srv)["lib-pin"].Revisions) + len(serverPins(srv)["exe-pin"].Revisions)
	if r := cli(t, "", nil, "push", m); r.code != 0 {
		t.Fatalf("third push: %s", r.stderr)
	}
	if got := len(serverPins(srv)["lib-pin"].Revisions) + len(serverPins(srv)["exe-pin"].Revisions); got != revs {
		t.Errorf("an unchanged push added pin revisions: %d → %d", revs, got)
	}
	// A plain binary cache says clearly that it cannot pin.
	fm := writeManifest(t, t.TempDir(), map[string]any{"version": 1, "cache": map[string]any{"url": "file://" + filepath.Join(dir, "fc")},
		"paths": []any{map[string]any{"storePath": lib, "pin": map[string]any{"name": "lib-pin"}}}})
	r = cli(t, "", nil, "push", "--dry-run", fm)
	if r.code != 0 || !strings.Contains(r.stderr, `pin "lib-pin" would not be created: pins are a Cachix feature`) {
		t.Errorf("dry run to a file cache with pins: %d %s", r.code, r.stderr)
	}
	r = cli(t, "", nil, "push", fm)
	if r.code != 0 || !strings.Contains(r.stderr, `pin "lib-pin" not created: pins are a Cachix feature`) {
		t.Errorf("file cache with pins: %d %s", r.code, r.stderr)
	}
}

// omResults writes an om ci results file.
func omResults(t *testing.T, v any) string {
	t.Helper()
	b, _ := json.Marshal(v)
	f := filepath.Join(t.TempDir(), "om.json")
	os.WriteFile(f, b, 0o644)
	return f
}

// TestPushOmResults: om ci results with one system and several sub-flakes,
// and with several systems, push exactly the selected outputs and pin them
// as <prefix>-<system>-<name>; filters apply; malformed JSON is a clear error.
func TestPushOmResults(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "om-token-99"
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	lib := nixBuild(t, "lib", salt)
	exe := nixBuild(t, "exe", salt+"-x")
	link := nixBuild(t, "link", salt+"-y")
	sys := strings.TrimSpace(strings.Trim(mustRun(t, "nix-instantiate", "--eval", "--expr", "builtins.currentSystem"), "\"\n"))

	oneSystem := omResults(t, map[string]any{
		"systems": []string{sys}, "flake": "github:example/project",
		"result": map[string]any{
			"ROOT": map[string]any{"build": map[string]any{"outPaths": []string{app, lib}, "byName": map[string]any{"app": app, "lib": lib}}},
			"doc":  map[string]any{"build": map[string]any{"outPaths": []string{exe}, "byName": map[string]any{"exe": exe}}},
			"off":  map[string]any{"build": nil},
		},
	})
	tests := []struct {
		name     string
		file     string
		extra    []string
		wantPins map[string]string
	}{
		{"root subflake", oneSystem, []string{"--subflake", "ROOT", "--prefix", "main"},
			map[string]string{"main-" + sys + "-app": app, "main-" + sys + "-lib": lib}},
		{"all subflakes, exclude", oneSystem, []string{"--prefix", "pr-7", "--exclude", "li*"},
			map[string]string{"pr-7-" + sys + "-app": app, "pr-7-" + sys + "-exe": exe}},
		{"include, no prefix", oneSystem, []string{"--include", "exe"},
			map[string]string{sys + "-exe": exe}},
		{"several systems (flat byName)", omResults(t, map[string]any{
			"systems": []string{sys, "aarch64-darwin"},
			"result":  map[string]any{"ROOT": map[string]any{"build": map[string]any{"byName": map[string]any{"link": link, "lib": lib}}}},
		}), []string{"--prefix", "multi"},
			map[string]string{"multi-" + sys + "-link": link, "multi-" + sys + "-lib": lib}},
		{"several systems (per-system byName)", omResults(t, map[string]any{
			"systems": []string{sys, "aarch64-linux"},
			"result": map[string]any{"ROOT": map[string]any{"build": map[string]any{
				sys:             map[string]any{"byName": map[string]any{"exe": exe}},
				"aarch64-linux": map[string]any{"byName": map[string]any{"exe": link}},
			}}},
		}), []string{"--prefix", "per"},
			map[string]string{"per-" + sys + "-exe": exe, "per-aarch64-linux-exe": link}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := pinServer(t, token)
			args := append([]string{"push", "--json", "--host", srv.URL(), "--cache", "pins", "--om-results", tt.file, "--keep-revisions", "5"}, tt.extra...)
			r := cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token}, args...)
			if r.code != 0 {
				t.Fatalf("push: %d %s", r.code, r.stderr)
			}
			got := map[string]string{}
			for name, p := range serverPins(srv) {
				got[name] = lastPath(p)
				if p.Keep == nil || p.Keep.Tag != "Revisions" || p.Keep.Contents != 5 {
					t.Errorf("%s keep = %+v", name, p.Keep)
				}
			}
			if !equalMaps(got, tt.wantPins) {
				t.Fatalf("pins = %v, want %v", got, tt.wantPins)
			}
			// Exactly the selected outputs' closures were pushed.
			want := map[string]bool{}
			for _, p := range tt.wantPins {
				for _, q := range closureOf(t, p) {
					want[q] = true
				}
			}
			held := map[string]bool{}
			for _, ni := range srv.StorePaths("pins") {
				held[ni.StorePath] = true
			}
			if len(held) != len(want) {
				t.Errorf("server holds %d paths, want %d", len(held), len(want))
			}
		})
	}

	for _, bad := range []struct{ name, content, want string }{
		{"not json", "{", "om.json"},
		{"no systems", `{"result":{"ROOT":{"build":{"byName":{}}}}}`, "systems"},
		{"byName not an object", `{"systems":["x86_64-linux"],"result":{"ROOT":{"build":{"byName":[1]}}}}`, "result.ROOT.build.byName"},
	} {
		f := filepath.Join(t.TempDir(), "om.json")
		os.WriteFile(f, []byte(bad.content), 0o644)
		r := cli(t, "", nil, "push", "--cache", "pins", "--om-results", f)
		if r.code != 2 || !strings.Contains(r.stderr, bad.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: code %d, %q", bad.name, r.code, r.stderr)
		}
	}
	r := cli(t, "", nil, "push", "--cache", "pins", "--om-results", oneSystem, "--subflake", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, "ROOT") {
		t.Errorf("unknown subflake: %d %q", r.code, r.stderr)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPinsListAndExport: list without a token (public cache), as a table
// and JSON; export to a directory and a tarball; real Nix evaluates the
// exported default.nix and realises a pinned path from the server's
// binary-cache view into a fresh store.
func TestPinsListAndExport(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "export-token-5"
	srv := pinServer(t, token)
	exe := nixBuild(t, "exe", t.Name())
	lib := nixBuild(t, "lib", t.Name())
	sys := strings.TrimSpace(strings.Trim(mustRun(t, "nix-instantiate", "--eval", "--expr", "builtins.currentSystem"), "\"\n"))
	env := []string{"CACHIX_AUTH_TOKEN=" + token}
	for _, p := range []string{exe, lib} {
		if r := cli(t, "", env, "push", "--host", srv.URL(), "--cache", "pins", p); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	for name, p := range map[string]string{"hello." + sys: exe, "tools.lib": lib} {
		if r := cli(t, "", env, "pin", "--host", srv.URL(), "--cache", "pins", name, p); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	// A pin whose artifact is a program becomes an app of the exported flake.
	if r := cli(t, "", env, "pin", "--host", srv.URL(), "--cache", "pins", "--artifact", "bin/hello", "greeter", exe); r.code != 0 {
		t.Fatal(r.stderr)
	}
	noToken := []string{"XDG_CONFIG_HOME=" + t.TempDir()}
	r := cli(t, "", noToken, "pins", "list", "--host", srv.URL(), "--cache", "pins")
	if r.code != 0 || !strings.Contains(r.stdout, "hello."+sys) || !strings.Contains(r.stdout, exe) {
		t.Fatalf("pins list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, "", noToken, "pins", "list", "--json", "--host", srv.URL(), "--cache", "pins")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("pins list --json: %v %s", err, r.stdout)
	}

	dir := filepath.Join(t.TempDir(), "export")
	r = cli(t, "", noToken, "pins", "export", "--host", srv.URL(), "--cache", "pins", "--output", dir)
	if r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}
	// The flake has an app for the pin with a bin/ artifact, and none for the
	// others (evaluating the app's type fetches nothing).
	app := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json",
		"path:"+dir+"#apps."+sys, "--apply", "builtins.mapAttrs (n: a: a.type)")
	app.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	if got, err := app.Output(); err != nil || strings.TrimSpace(string(got)) != `{"greeter":"app"}` {
		t.Errorf("apps of the exported flake: %v %s", err, got)
	}
	tarball := filepath.Join(t.TempDir(), "pins.tar.gz")
	if r := cli(t, "", noToken, "pins", "export", "--host", srv.URL(), "--cache", "pins", "--output", tarball); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// Deterministic: a second export is byte for byte the same.
	tarball2 := filepath.Join(t.TempDir(), "pins.tar.gz")
	cli(t, "", noToken, "pins", "export", "--host", srv.URL(), "--cache", "pins", "--output", tarball2)
	a, _ := os.ReadFile(tarball)
	b, _ := os.ReadFile(tarball2)
	if len(a) == 0 || string(a) != string(b) {
		t.Error("two exports of the same pins differ")
	}

	// default.nix with a stub storePath: the right strings, system picked.
	out := mustRun(t, "nix-instantiate", "--eval", "--strict", "--json", "-E",
		`import `+filepath.Join(dir, "default.nix")+` { system = "`+sys+`"; storePath = p: p; }`)
	var evaluated map[string]any
	if err := json.Unmarshal([]byte(out), &evaluated); err != nil {
		t.Fatal(err)
	}
	if evaluated["hello"] != exe || evaluated["tools"].(map[string]any)["lib"] != lib {
		t.Fatalf("default.nix evaluates to %v", evaluated)
	}

	// Real Nix realises the pinned path into a fresh store from the cache.
	fresh := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command("nix", "--extra-experimental-features", "nix-command", "eval", "--raw",
		"--store", fresh, "--option", "substituters", srv.BinaryCacheURL("pins"),
		"--option", "trusted-public-keys", srv.ManagedPublicKey("pins"),
		"-f", filepath.Join(dir, "default.nix"), "hello")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(got)) != exe {
		t.Fatalf("nix eval of the export: %v %s %s", err, got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "copying path '"+exe+"' from '"+srv.BinaryCacheURL("pins")) {
		t.Errorf("nix did not substitute from the cache: %s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(fresh, strings.TrimPrefix(exe, "/"), "bin", "hello")); err != nil {
		t.Fatalf("the pinned path was not realised in the fresh store: %v", err)
	}
	names := []string{}
	for _, p := range listed {
		names = append(names, p["name"].(string))
	}
	sort.Strings(names)
	t.Logf("exported pins: %v", names)
}

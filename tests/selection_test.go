package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// The tests of the selection (design.md §5.9): exclusion rules in both
// semantics, the upstream filter, build closures and om ci's outPaths and
// allDeps, each against real Nix. The invariant they all check: the cache
// never holds a narinfo whose references are neither in it nor, for
// paths left to an upstream cache, in that upstream.

// cacheNarinfos reads every narinfo of a file:// cache: store path →
// references (full paths).
func cacheNarinfos(t *testing.T, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sp string
		var refs []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "StorePath: "); ok {
				sp = v
			}
			if v, ok := strings.CutPrefix(line, "References:"); ok {
				for _, r := range strings.Fields(v) {
					refs = append(refs, "/nix/store/"+r)
				}
			}
		}
		if sp == "" {
			t.Fatalf("%s has no StorePath", f)
		}
		out[sp] = refs
	}
	return out
}

// checkClosed asserts the invariant on a file:// cache: every reference
// of every narinfo is in the cache or in upstream.
func checkClosed(t *testing.T, dir string, upstream map[string]bool) map[string][]string {
	t.Helper()
	held := cacheNarinfos(t, dir)
	for p, refs := range held {
		for _, r := range refs {
			if _, ok := held[r]; !ok && !upstream[r] {
				t.Errorf("the cache holds %s, whose reference %s is neither in it nor upstream", p, r)
			}
		}
	}
	return held
}

// byName maps the fixture's store paths by their name part.
func byName(paths []string) map[string]string {
	out := map[string]string{}
	for _, p := range paths {
		out[p[len("/nix/store/")+33:]] = p
	}
	return out
}

// namesOf lists the name parts of paths, sorted.
func namesOf(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, p[len("/nix/store/")+33:])
	}
	sort.Strings(out)
	return out
}

// resultPaths lists a JSON result's array of {path} objects.
func resultPaths(res map[string]any, field string) []string {
	var out []string
	items, _ := res[field].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m["path"].(string))
		} else if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// realise has real Nix realise path into a fresh store from the given
// caches only, signatures required; it returns the store's root.
func realise(t *testing.T, caches, keys []string, path string) (string, error) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command("nix-store", "--store", root, "--realise", path,
		"--option", "substituters", strings.Join(caches, " "),
		"--option", "trusted-public-keys", strings.Join(keys, " "),
		"--option", "require-sigs", "true")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		return root, &cmdError{err, string(out)}
	}
	return root, nil
}

type cmdError struct {
	err error
	out string
}

func (e *cmdError) Error() string { return e.err.Error() + "\n" + e.out }

// upstreamCache copies paths (with their closures) into a fresh file://
// cache signed with its own key: the other cache the users substitute
// from. It returns the cache's URL and public key.
func upstreamCache(t *testing.T, paths ...string) (string, string) {
	t.Helper()
	sk, pk := keypair(t, "upstream-test-1")
	url := "file://" + filepath.Join(t.TempDir(), "upstream")
	args := append([]string{"--extra-experimental-features", "nix-command", "copy", "--to", url + "?compression=zstd&secret-key=" + sk}, paths...)
	mustRun(t, "nix", args...)
	return url, pk
}

// TestExcludeRulesBothSemantics: each rule (name glob, regex, NAR-size
// cap) in each mode pushes exactly what it should to a file:// cache, the
// invariant holds over every narinfo the cache holds, and real Nix gets
// the roots: for "prune" the roots that were not pruned, from the cache
// alone; for "upstream" every root, from the cache and an upstream cache
// holding the excluded paths.
func TestExcludeRulesBothSemantics(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	lib := nixBuild(t, "lib", salt)
	paths := byName(closureOf(t, app))
	// app → lib, exe, symlink, empty-dir; lib → single-file, selfref.
	rules := []struct {
		name     string
		flags    []string
		excluded string
		// pruned: what prune semantics also leaves out; notPushed: the roots it keeps out.
		pruned, notPushed []string
	}{
		{"name glob", []string{"--exclude-path", "single-*"}, "single-file", []string{"app", "lib"}, []string{"app", "lib"}},
		{"regex", []string{"--exclude-regex", "-selfref$"}, "selfref", []string{"app", "lib"}, []string{"app", "lib"}},
		// exe's NAR (1.2 KiB) is the only one over 1000 bytes.
		{"nar size", []string{"--max-nar-size", "1000"}, "exe", []string{"app"}, []string{"app"}},
	}
	sk, pk := keypair(t, "selection-test-1")
	for _, rule := range rules {
		for _, mode := range []string{"prune", "upstream"} {
			t.Run(rule.name+"/"+mode, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "cache")
				args := append([]string{"push", "--json", "--to", "file://" + dir, "--signing-key-file", sk, "--exclude-mode", mode}, rule.flags...)
				r := cli(t, "", nil, append(args, app, lib)...)
				if r.code != 0 {
					t.Fatalf("push: %d %s", r.code, r.stderr)
				}
				res := final(t, r.stdout)
				excluded := resultPaths(res, "excluded")
				if strings.Join(namesOf(excluded), ",") != rule.excluded {
					t.Fatalf("excluded %v, want %s", namesOf(excluded), rule.excluded)
				}
				upstream := map[string]bool{}
				wantPushed := map[string]bool{}
				for n := range paths {
					wantPushed[n] = n != rule.excluded
				}
				if mode == "prune" {
					for _, n := range rule.pruned {
						wantPushed[n] = false
					}
					if got := namesOf(resultPaths(res, "pruned")); strings.Join(got, ",") != strings.Join(rule.pruned, ",") {
						t.Errorf("pruned %v, want %v", got, rule.pruned)
					}
					if got := namesOf(resultPaths(res, "notPushed")); strings.Join(got, ",") != strings.Join(rule.notPushed, ",") {
						t.Errorf("not pushed %v, want %v", got, rule.notPushed)
					}
					for _, np := range res["notPushed"].([]any) {
						if why := np.(map[string]any)["reason"].(string); !strings.Contains(why, paths[rule.excluded]) {
							t.Errorf("the reason does not name the excluded path: %q", why)
						}
					}
				} else {
					upstream[paths[rule.excluded]] = true
					if got := resultPaths(res, "leftToUpstream"); len(got) != 1 || got[0] != paths[rule.excluded] {
						t.Errorf("left to upstream %v", got)
					}
					if len(resultPaths(res, "notPushed")) != 0 || count(res, "confirmed") != 2 {
						t.Errorf("upstream semantics must push and confirm every root: %v", res)
					}
				}
				held := checkClosed(t, dir, upstream)
				for n, want := range wantPushed {
					if _, in := held[paths[n]]; in != want {
						t.Errorf("%s in the cache: %v, want %v", n, in, want)
					}
				}

				// The dry run says the same, rule by rule, and uploads nothing.
				dry := cli(t, "", nil, append(append([]string{"push", "--dry-run", "--to", "file://" + t.TempDir() + "/dry", "--exclude-mode", mode}, rule.flags...), app, lib)...)
				if dry.code != 0 || !strings.Contains(dry.stderr, paths[rule.excluded]) || !strings.Contains(dry.stderr, "1 excluded") {
					t.Errorf("dry run: %d %s", dry.code, dry.stderr)
				}

				// Real Nix.
				if mode == "prune" {
					for _, root := range []string{app, lib} {
						_, err := realise(t, []string{"file://" + dir}, []string{pk}, root)
						pruned := strings.Contains(strings.Join(rule.notPushed, ","), root[len("/nix/store/")+33:])
						if pruned && err == nil {
							t.Errorf("%s was pruned, yet Nix found it", root)
						}
						if !pruned && err != nil {
							t.Errorf("%s: %v", root, err)
						}
					}
					return
				}
				upURL, upPK := upstreamCache(t, paths[rule.excluded])
				if _, err := realise(t, []string{"file://" + dir}, []string{pk}, app); err == nil {
					t.Error("Nix substituted app without the upstream cache: the excluded path was pushed after all")
				}
				if _, err := realise(t, []string{"file://" + dir, upURL}, []string{pk, upPK}, app); err != nil {
					t.Errorf("app from the cache and the upstream: %v", err)
				}
			})
		}
	}
	// A pattern that matches nothing (a name glob with "-" before a name
	// that has none) is warned about; one that matches is not.
	r := cli(t, "", nil, "push", "--dry-run", "--to", "file://"+t.TempDir(), "--exclude-path", "*-app", app)
	hasLine(t, "pattern matching nothing", r.stderr, "warning: the exclusion patterns (*-app) match none of the 7 paths the cache lacks: nothing is left out")
	r = cli(t, "", nil, "push", "--dry-run", "--to", "file://"+t.TempDir(), "--exclude-path", "app", app)
	if strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "1 excluded") {
		t.Errorf("a pattern that matches: %s", r.stderr)
	}
}

// TestExcludeOnCachix: against the strict Cachix server, each rule (name
// glob, regex, NAR-size cap) in each mode. "prune" leaves only complete
// closures, with no pin for a pruned or excluded root; "upstream" leaves
// the dependents hidden (Cachix serves a narinfo only once its closure is
// in the cache or upstream) and their pins refused until upstream has the
// excluded path, and then real Nix substitutes them from the cache and an
// upstream cache.
func TestExcludeOnCachix(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "exclude-token-51"
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	exe := nixBuild(t, "exe", salt)
	paths := byName(closureOf(t, app))
	tf := tokenFile(t, token)
	// app → lib, exe, symlink, empty-dir; lib → single-file, selfref. Both
	// app and exe are roots, pinned.
	rules := []struct {
		name     string
		exclude  map[string]any
		excluded string
		// pruned: what prune semantics leaves out besides; pins: the pins
		// prune semantics creates; hidden: what Cachix hides under
		// upstream semantics until upstream has the excluded path.
		pruned, pins, hidden []string
	}{
		{"name glob", map[string]any{"names": []string{"single-*"}}, "single-file", []string{"app", "lib"}, []string{"exe"}, []string{"app", "lib"}},
		{"regex", map[string]any{"regex": []string{"-selfref$"}}, "selfref", []string{"app", "lib"}, []string{"exe"}, []string{"app", "lib"}},
		// exe's NAR (1.2 KiB) is the only one over 1000 bytes; exe is a root.
		{"nar size", map[string]any{"maxNarSize": 1000}, "exe", []string{"app"}, nil, []string{"app"}},
	}
	manifest := func(dir, mode string, exclude map[string]any) string {
		ex := map[string]any{"mode": mode}
		for k, v := range exclude {
			ex[k] = v
		}
		return writeManifest(t, dir, map[string]any{
			"version": 1,
			"cache":   map[string]any{"name": "sel", "authTokenFile": tf},
			"paths": []any{
				map[string]any{"storePath": app, "pin": map[string]any{"name": "app"}},
				map[string]any{"storePath": exe, "pin": map[string]any{"name": "exe"}},
			},
			"push": map[string]any{"exclude": ex},
		})
	}
	server := func(t *testing.T) *cachixserver.Server {
		return startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "sel", Public: true, WriteTokens: []string{token}}}})
	}
	pinNames := func(srv *cachixserver.Server) []string {
		var out []string
		for _, p := range srv.Pins("sel") {
			out = append(out, p.Name)
		}
		sort.Strings(out)
		return out
	}

	for _, rule := range rules {
		t.Run(rule.name+"/prune", func(t *testing.T) {
			srv := server(t)
			r := cli(t, "", nil, "push", "--json", "--host", srv.URL(), manifest(t.TempDir(), "prune", rule.exclude))
			if r.code != 0 {
				t.Fatalf("push: %d %s", r.code, r.stderr)
			}
			left := map[string]bool{rule.excluded: true}
			for _, n := range rule.pruned {
				left[n] = true
			}
			held := map[string]bool{}
			for _, ni := range srv.StorePaths("sel") {
				n := ni.StorePath[len("/nix/store/")+33:]
				held[n] = true
				if !ni.Complete {
					t.Errorf("the server holds %s with an incomplete closure", ni.StorePath)
				}
				if left[n] {
					t.Errorf("%s was pushed", ni.StorePath)
				}
			}
			for n := range paths {
				if !left[n] && !held[n] {
					t.Errorf("%s was not pushed", n)
				}
			}
			if got := pinNames(srv); strings.Join(got, ",") != strings.Join(rule.pins, ",") {
				t.Errorf("pins %v, want %v", got, rule.pins)
			}
			if !strings.Contains(r.stdout, `"event":"not-pushed"`) {
				t.Errorf("no not-pushed event: %s", r.stdout)
			}
		})

		t.Run(rule.name+"/upstream", func(t *testing.T) {
			srv := server(t)
			m := manifest(t.TempDir(), "upstream", rule.exclude)
			r := cli(t, "", nil, "push", "--json", "--host", srv.URL(), m)
			// app's pin is refused: its closure is incomplete for Cachix.
			if r.code != 1 || !strings.Contains(r.stderr, "closure is incomplete") || !strings.Contains(r.stdout, "Cachix serves a narinfo only once") {
				t.Fatalf("push: %d %s", r.code, r.stderr)
			}
			var hidden []string
			for _, ni := range srv.StorePaths("sel") {
				if n := ni.StorePath[len("/nix/store/")+33:]; n == rule.excluded {
					t.Errorf("the excluded %s was pushed", ni.StorePath)
				} else if !ni.Complete {
					hidden = append(hidden, n)
				}
			}
			sort.Strings(hidden)
			if strings.Join(hidden, ",") != strings.Join(rule.hidden, ",") {
				t.Errorf("hidden %v, want %v", hidden, rule.hidden)
			}
			srv.SetUpstream(paths[rule.excluded][len("/nix/store/") : len("/nix/store/")+32])
			for _, ni := range srv.StorePaths("sel") {
				if !ni.Complete {
					t.Errorf("%s still hidden once upstream has its reference", ni.StorePath)
				}
			}
			upURL, upPK := upstreamCache(t, paths[rule.excluded])
			if _, err := realise(t, []string{srv.BinaryCacheURL("sel"), upURL}, []string{srv.ManagedPublicKey("sel"), upPK}, app); err != nil {
				t.Error(err)
			}
			// Now app's pin is accepted.
			if r := cli(t, "", nil, "push", "--host", srv.URL(), m); r.code != 0 {
				t.Errorf("second push: %d %s", r.code, r.stderr)
			}
			if got := pinNames(srv); len(got) == 0 || got[0] != "app" {
				t.Errorf("pins after upstream has %s: %v", rule.excluded, got)
			}
		})
	}
}

// TestUpstreamFilter: on a closure whose lower part is signed by a key
// standing for cache.nixos.org, a push to a file:// cache skips exactly
// the signed paths (the default key name), pushes them with
// --no-upstream-filter, and skips none for another key name; real Nix
// substitutes the filtered push from the cache and an upstream cache. It
// logs what the filter saves.
func TestUpstreamFilter(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	fixture := filepath.Join(repoRoot(), "tests/fixtures/upstream.nix")
	build := func(attr string) string {
		return strings.TrimSpace(mustRun(t, "nix-build", fixture, "-A", attr, "--no-out-link", "--argstr", "salt", salt))
	}
	app, base := build("app"), build("base")
	// The key that stands for cache.nixos.org has its name.
	upSK, upPK := keypair(t, "cache.nixos.org-1")
	mustRun(t, "nix", "--extra-experimental-features", "nix-command", "store", "sign", "--key-file", upSK, "--recursive", base)
	signed := map[string]bool{}
	for _, p := range closureOf(t, base) {
		signed[p] = true
	}
	closure := closureOf(t, app)
	if len(signed) != 40 || len(closure) != 43 {
		t.Fatalf("fixture: %d signed paths, closure of %d", len(signed), len(closure))
	}
	sk, pk := keypair(t, "ours-1")

	type run struct {
		pushed              []string
		narBytes, fileBytes float64
	}
	push := func(extra ...string) (string, run) {
		dir := filepath.Join(t.TempDir(), "cache")
		args := append([]string{"push", "--json", "--to", "file://" + dir, "--signing-key-file", sk}, extra...)
		r := cli(t, "", nil, append(args, app)...)
		if r.code != 0 {
			t.Fatalf("push %v: %d %s", extra, r.code, r.stderr)
		}
		res := final(t, r.stdout)
		return dir, run{resultPaths(res, "pushed"), res["narBytes"].(float64), res["fileBytes"].(float64)}
	}

	dir, filtered := push()
	for _, p := range filtered.pushed {
		if signed[p] {
			t.Errorf("the filter pushed the upstream-signed %s", p)
		}
	}
	if len(filtered.pushed) != len(closure)-len(signed) {
		t.Errorf("pushed %d paths, want the %d unsigned ones", len(filtered.pushed), len(closure)-len(signed))
	}
	checkClosed(t, dir, signed)
	_, all := push("--no-upstream-filter")
	if len(all.pushed) != len(closure) {
		t.Errorf("--no-upstream-filter pushed %d paths, want %d", len(all.pushed), len(closure))
	}
	if _, other := push("--upstream-key", "company-cache-1"); len(other.pushed) != len(closure) {
		t.Errorf("another key name: pushed %d paths, want %d", len(other.pushed), len(closure))
	}
	t.Logf("upstream filter on a %d-path closure (%d signed upstream): with it %d paths, %.0f NAR bytes, %.0f file bytes; without it %d paths, %.0f NAR bytes, %.0f file bytes (%.1f%% of the bytes pushed)",
		len(closure), len(signed), len(filtered.pushed), filtered.narBytes, filtered.fileBytes,
		len(all.pushed), all.narBytes, all.fileBytes, 100*filtered.fileBytes/all.fileBytes)

	// The signatures came from the local path info: Nix agrees the cache
	// plus the upstream are complete, and the cache alone is not.
	var base40 []string
	for p := range signed {
		base40 = append(base40, p)
	}
	upURL := "file://" + filepath.Join(t.TempDir(), "upstream")
	mustRun(t, "nix", append([]string{"--extra-experimental-features", "nix-command", "copy", "--to", upURL + "?compression=zstd"}, base40...)...)
	if _, err := realise(t, []string{"file://" + dir, upURL}, []string{pk, upPK}, app); err != nil {
		t.Error(err)
	}
	if _, err := realise(t, []string{"file://" + dir}, []string{pk}, app); err == nil {
		t.Error("the filtered cache alone was enough: the filter skipped nothing")
	}
}

// sandboxPaths are the host directories a sandboxed builder of the
// fixtures needs (/bin/sh and what it loads), for building in a fresh
// store, which Nix does in a sandbox.
func sandboxPaths(t *testing.T) string {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/bin/sh=" + sh}
	for _, d := range []string{"/usr", "/lib", "/lib64"} {
		if _, err := os.Stat(d); err == nil {
			paths = append(paths, d)
		}
	}
	return strings.Join(paths, " ")
}

// TestBuildClosureRebuildsOffline: the build closure of a derivation
// whose output was never built is pushed to a file:// cache (its inputs:
// the used output of each input derivation and its source; the output
// itself is not realised and is skipped), and real Nix then builds the
// derivation in a fresh store with that cache as its only substituter and
// no network. The inputs cannot be built there (their builders need a
// file that is gone), so they were substituted. The same closure, asked
// for through a manifest on an output path, also carries the output.
func TestBuildClosureRebuildsOffline(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	fixture := filepath.Join(repoRoot(), "tests/fixtures/build.nix")
	marker := filepath.Join(t.TempDir(), "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(extra ...string) []string {
		return append([]string{fixture, "--argstr", "salt", salt, "--argstr", "marker", marker}, extra...)
	}
	drv := strings.TrimSpace(mustRun(t, "nix-instantiate", args("-A", "top")...))
	dep := strings.TrimSpace(mustRun(t, "nix-build", args("-A", "dep", "--no-out-link")...))
	multi := strings.Fields(mustRun(t, "nix-build", args("-A", "multi.all", "--no-out-link")...))
	outs := strings.Fields(mustRun(t, "nix-store", "--query", "--outputs", drv))
	if len(multi) != 2 || len(outs) != 1 {
		t.Fatalf("fixture: multi %v, outputs %v", multi, outs)
	}
	var multiOut, multiDoc string
	for _, p := range multi {
		if strings.HasSuffix(p, "-doc") {
			multiDoc = p
		} else {
			multiOut = p
		}
	}
	sk, pk := keypair(t, "build-test-1")
	dir := filepath.Join(t.TempDir(), "cache")
	r := cli(t, "", nil, "push", "--json", "--closure", "build", "--to", "file://"+dir, "--signing-key-file", sk, drv)
	if r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	res := final(t, r.stdout)
	held := checkClosed(t, dir, nil)
	for _, p := range []string{dep, multiOut} {
		if _, ok := held[p]; !ok {
			t.Errorf("the input %s was not pushed", p)
		}
	}
	if _, ok := held[multiDoc]; ok {
		t.Errorf("the unused output %s was pushed", multiDoc)
	}
	if _, ok := held[drv]; ok {
		t.Error("the derivation itself was pushed")
	}
	if len(held) != 3 {
		t.Errorf("the cache holds %d paths, want 3 (two input outputs and the source): %v", len(held), held)
	}
	if got := resultPaths(res, "skipped"); len(got) != 1 || got[0] != outs[0] {
		t.Errorf("skipped %v, want the unbuilt output %s", got, outs[0])
	}
	if !strings.Contains(r.stdout, `"skipped":1`) {
		t.Errorf("the plan event does not count the skipped output: %s", r.stdout)
	}

	// The rebuild, offline, from the cache alone.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command("nix-build", append(args("-A", "top", "--no-out-link"),
		"--store", root,
		"--option", "substituters", "file://"+dir,
		"--option", "trusted-public-keys", pk,
		"--option", "require-sigs", "true",
		"--option", "sandbox-paths", sandboxPaths(t))...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rebuilding in a fresh store from the build closure: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:])); got != outs[0] {
		t.Errorf("the rebuild printed %q, want %s", got, outs[0])
	}
	built, err := os.ReadFile(filepath.Join(root, outs[0]))
	if err != nil || !strings.Contains(string(built), "source for the rebuild") || !strings.Contains(string(built), "lib") {
		t.Errorf("rebuilt output: %q, %v", built, err)
	}
	// The inputs came from the cache, signed by its key.
	info := mustRun(t, "nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "--store", root, dep)
	if !strings.Contains(info, "build-test-1") {
		t.Errorf("the input in the fresh store is not the cache's: %s", info)
	}

	// A manifest asks for the build closure of an output: the output and
	// its runtime closure come along.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSpace(mustRun(t, "nix-build", args("-A", "top", "--no-out-link")...))
	dir2 := filepath.Join(t.TempDir(), "cache2")
	m := writeManifest(t, t.TempDir(), map[string]any{
		"version": 1, "cache": map[string]any{"url": "file://" + dir2},
		"paths": []any{map[string]any{"storePath": top, "closure": "build"}},
	})
	if r := cli(t, "", nil, "push", "-q", m); r.code != 0 {
		t.Fatalf("manifest push: %d %s", r.code, r.stderr)
	}
	if held := checkClosed(t, dir2, nil); len(held) != 4 {
		t.Errorf("build closure of the output: %d paths, want 4: %v", len(held), held)
	}
}

// TestOmResultsOutPathsAndAllDeps: om ci results with outPaths (one of
// them a path inside a store path, one not in byName) and allDeps (a
// derivation, an output, a path that is not in the store): every valid
// one is pushed with its closure, the invalid one is skipped with a
// count, and only byName is pinned. A name filter pushes the named
// outputs only.
func TestOmResultsOutPathsAndAllDeps(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "om-alldeps-token"
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	exe := nixBuild(t, "exe", salt+"-other")
	libDrv := strings.TrimSpace(mustRun(t, "nix-instantiate", filepath.Join(repoRoot(), "tests/fixtures/closure.nix"),
		"-A", "lib", "--argstr", "salt", salt+"-drv"))
	gone := "/nix/store/00000000000000000000000000000000-never-built"
	sys := strings.Trim(strings.TrimSpace(mustRun(t, "nix-instantiate", "--eval", "--expr", "builtins.currentSystem")), `"`)
	om := omResults(t, map[string]any{
		"systems": []string{sys},
		"result": map[string]any{"ROOT": map[string]any{"build": map[string]any{
			"outPaths": []string{app, exe + "/bin/hello"},
			"byName":   map[string]any{"app": app},
			"allDeps":  []string{app, libDrv, gone},
		}}},
	})

	srv := pinServer(t, token)
	r := cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token}, "push", "--json", "--host", srv.URL(), "--cache", "pins",
		"--om-results", om, "--prefix", "ci")
	if r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	res := final(t, r.stdout)
	if got := resultPaths(res, "skipped"); len(got) != 1 || got[0] != gone {
		t.Errorf("skipped %v, want %s", got, gone)
	}
	want := map[string]bool{}
	for _, root := range []string{app, exe, libDrv} {
		for _, p := range closureOf(t, root) {
			want[p] = true
		}
	}
	held := map[string]bool{}
	for _, ni := range srv.StorePaths("pins") {
		held[ni.StorePath] = true
		if !ni.Complete {
			t.Errorf("%s is held with an incomplete closure", ni.StorePath)
		}
	}
	if len(held) != len(want) || !held[libDrv] || !held[exe] {
		t.Errorf("the server holds %d paths, want %d (app, exe and lib.drv with their closures)", len(held), len(want))
	}
	pins := serverPins(srv)
	if len(pins) != 1 || lastPath(pins["ci-"+sys+"-app"]) != app {
		t.Errorf("pins %v: want only byName's app", pins)
	}

	// With a name filter, only the named outputs go.
	srv2 := pinServer(t, token)
	r = cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token}, "push", "--json", "--host", srv2.URL(), "--cache", "pins",
		"--om-results", om, "--include", "app")
	if r.code != 0 {
		t.Fatalf("push --include: %d %s", r.code, r.stderr)
	}
	if n := len(srv2.StorePaths("pins")); n != len(closureOf(t, app)) {
		t.Errorf("--include app pushed %d paths, want app's closure (%d)", n, len(closureOf(t, app)))
	}
}

// TestActivateSettlesPrunedRoot: a hook's root that the selection prunes
// is reported once, is neither failed nor recorded as pushed, and the
// next activation is the silent fast path instead of a push again; the
// root next to it is pushed and confirmed.
func TestActivateSettlesPrunedRoot(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	exe := nixBuild(t, "exe", salt+"-alone")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cache := filepath.Join(dir, "cache")
	m := writeManifest(t, dir, map[string]any{"version": 1,
		"cache": map[string]any{"url": "file://" + cache},
		"paths": []any{map[string]any{"storePath": app}, map[string]any{"storePath": exe}},
		"push":  map[string]any{"exclude": map[string]any{"names": []string{"single-file"}}}})
	args := []string{"activate", "--mode", "foreground", "--state-dir", state, m}
	r := cli(t, "", nil, args...)
	if r.code != 0 || !strings.Contains(r.stderr, "Not pushing "+app) {
		t.Fatalf("first activation: %d %s", r.code, r.stderr)
	}
	held := checkClosed(t, cache, nil)
	if _, ok := held[exe]; !ok {
		t.Error("the root beside the pruned one was not pushed")
	}
	if _, ok := held[app]; ok {
		t.Error("the pruned root was pushed")
	}
	if out := cli(t, "", nil, "queue", "list", "--json", "--state-dir", state).stdout; strings.Contains(out, app) {
		t.Errorf("the pruned root stays queued: %s", out)
	}
	recs, err := os.ReadFile(filepath.Join(state, "pushed.json"))
	if err != nil || !strings.Contains(string(recs), app+"!sel=") || !strings.Contains(string(recs), "!not-pushed") ||
		strings.Contains(string(recs), `"`+app+`"`) {
		t.Errorf("records: %s, %v", recs, err)
	}
	if r := cli(t, "", nil, args...); r.code != 0 || r.stderr != "" {
		t.Errorf("second activation: %d %q (want the silent fast path)", r.code, r.stderr)
	}
	// The dry run of a hook reports it too.
	if r := cli(t, "", nil, "activate", "--dry-run", "--state-dir", state, m); !strings.Contains(r.stderr, "Would not push "+app) {
		t.Errorf("dry run: %d %s", r.code, r.stderr)
	}
}

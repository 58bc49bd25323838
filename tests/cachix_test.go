package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// The §10 test vector key in Cachix's bare form, and its public key.
const (
	vectorCachixKey = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA=="
	vectorPublicKey = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
)

// startServer runs the strict Cachix test server with the given caches.
func startServer(t *testing.T, cfg cachixserver.Config) *cachixserver.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	srv, err := cachixserver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// tokenFile writes a token to a private file and returns its path.
func tokenFile(t *testing.T, token string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// noSecrets fails if a secret appears in any output.
func noSecrets(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("a secret appears in the output:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		}
	}
}

// TestCachixManagedRoundTrip: push a real closure to a managed cache, then
// real Nix substitutes it from the server's binary-cache view with the
// server's key required; a second push is one bulk query and no upload; a
// partly overlapping push uploads exactly the missing paths.
func TestCachixManagedRoundTrip(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "managed-token-3f9a1c"
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "managed", Public: true, WriteTokens: []string{token}, PreferredCompression: "ZSTD"},
	}})
	salt := t.Name()
	lib := nixBuild(t, "lib", salt)
	app := nixBuild(t, "app", salt)
	tf := tokenFile(t, token)

	// Partly overlapping: push lib's closure (3 paths) first.
	r := cli(t, "", nil, "push", "-v", "--json", "--host", srv.URL(), "--cache", "managed", "--auth-token-file", tf, lib)
	if r.code != 0 {
		t.Fatalf("push lib: %d %s", r.code, r.stderr)
	}
	noSecrets(t, r, token)
	if st := srv.Stats(); st.UploadsCompleted != 3 || len(st.Rejections) != 0 {
		t.Fatalf("after lib: %+v", st)
	}
	srv.ResetStats()
	r = cli(t, "", nil, "push", "--json", "--host", srv.URL(), "--cache", "managed", "--auth-token-file", tf, app)
	if r.code != 0 {
		t.Fatalf("push app: %d %s", r.code, r.stderr)
	}
	st := srv.Stats()
	if st.UploadsStarted != 4 || st.UploadsCompleted != 4 || st.BulkQueryCalls != 1 || len(st.Rejections) != 0 {
		t.Fatalf("overlapping push: want exactly the 4 missing paths uploaded after 1 bulk query: %+v", st)
	}
	if res := final(t, r.stdout); count(res, "pushed") != 4 || res["present"].(float64) != 3 {
		t.Fatalf("result: %v", res)
	}

	// Second push: one bulk query, at most one cache-info request, nothing uploaded.
	srv.ResetStats()
	r = cli(t, "", nil, "push", "--host", srv.URL(), "--cache", "managed", "--auth-token-file", tf, app)
	st = srv.Stats()
	if r.code != 0 || st.BulkQueryCalls != 1 || st.UploadsStarted != 0 || st.Requests[cachixserver.EndpointCacheInfo] > 1 {
		t.Fatalf("no-op push: %d %s %+v", r.code, r.stderr, st)
	}
	if !strings.Contains(r.stderr, "Nothing to push") {
		t.Errorf("no-op output: %s", r.stderr)
	}

	root, err := substitute(t, srv.BinaryCacheURL("managed"), srv.ManagedPublicKey("managed"), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range closureOf(t, app) {
		if got, want := narHashIn(t, root, p), narHashIn(t, "", p); got != want {
			t.Errorf("%s: substituted %s, local %s", p, got, want)
		}
	}
}

// TestCachixSelfSignedRoundTrip: with a signing key the client signs, the
// strict server checks the signature against the registered key, and real
// Nix verifies it with the cache's public key. Both key forms work.
func TestCachixSelfSignedRoundTrip(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "selfsigned-token-77b2"
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "mine", Public: true, WriteTokens: []string{token}, SelfSigned: true, PublicKey: vectorPublicKey},
	}})
	app := nixBuild(t, "app", t.Name())
	exe := nixBuild(t, "exe", t.Name()+"-nixform")
	env := []string{"CACHIX_AUTH_TOKEN=" + token, "CACHIX_SIGNING_KEY=" + vectorCachixKey}
	r := cli(t, "", env, "push", "-v", "--host", srv.URL(), "--cache", "mine", app)
	if r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	noSecrets(t, r, token, vectorCachixKey)
	// The same key in Nix's name:base64 form, from a file (cachix itself would mis-decode it).
	kf := filepath.Join(t.TempDir(), "key")
	os.WriteFile(kf, []byte("mine.cachix.org-1:"+vectorCachixKey+"\n"), 0o600)
	r = cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token}, "push", "--host", srv.URL(), "--cache", "mine", "--signing-key-file", kf, exe)
	if r.code != 0 {
		t.Fatalf("push with a Nix-form key: %d %s", r.code, r.stderr)
	}
	if st := srv.Stats(); len(st.Rejections) != 0 {
		t.Fatalf("rejections: %+v", st.Rejections)
	}
	for _, p := range []string{app, exe} {
		if _, err := substitute(t, srv.BinaryCacheURL("mine"), srv.PublicKey("mine"), p); err != nil {
			t.Fatal(err)
		}
	}
	// A different key is refused by the server, with its message shown.
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("x:"+strings.Repeat("A", 86)+"==\n"), 0o600)
	single := nixBuild(t, "single", t.Name()+"-wrongkey")
	r = cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token}, "push", "--host", srv.URL(), "--cache", "mine", "--signing-key-file", other, single)
	if r.code == 0 {
		t.Fatal("a push signed with the wrong key succeeded")
	}
}

// TestCachixFaults: with ~30% of requests failing (429 with Retry-After,
// 5xx, dropped connections) the push completes and the server ends with
// exactly the closure and no rejected upload.
func TestCachixFaults(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const token = "faulty-token-c0ffee"
	srv := startServer(t, cachixserver.Config{
		Caches:     []cachixserver.CacheConfig{{Name: "flaky", WriteTokens: []string{token}}},
		FaultRate:  0.3,
		RetryAfter: 1,
		Seed:       42,
	})
	app := nixBuild(t, "app", t.Name())
	r := cli(t, "", []string{"CACHIX_AUTH_TOKEN=" + token},
		"push", "--host", srv.URL(), "--cache", "flaky", app)
	st := srv.Stats()
	if r.code != 0 {
		t.Fatalf("push through faults failed: %d %s\n%+v", r.code, r.stderr, st)
	}
	if st.FaultsInjected == 0 {
		t.Fatal("no fault was injected; the test proves nothing")
	}
	if len(st.Rejections) != 0 {
		t.Fatalf("rejected requests: %+v", st.Rejections)
	}
	got := map[string]bool{}
	for _, ni := range srv.StorePaths("flaky") {
		got[ni.StorePath] = true
	}
	want := closureOf(t, app)
	if len(got) != len(want) {
		t.Fatalf("server holds %d paths, want %d", len(got), len(want))
	}
	for _, p := range want {
		if !got[p] {
			t.Errorf("missing %s", p)
		}
	}
	t.Logf("faults injected: %d of %v requests", st.FaultsInjected, st.Requests)
}

// TestCachixAuthErrors: a wrong token fails fast with a clear message and
// few requests; so does an unknown cache; neither prints the token.
func TestCachixAuthErrors(t *testing.T) {
	requireNix(t)
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "private", WriteTokens: []string{"right-token-1"}, ReadTokens: []string{"read-token-1"}},
	}})
	single := nixBuild(t, "single", t.Name())
	cases := []struct {
		name, cache, token string
		want               []string
	}{
		{"wrong token", "private", "wrong-token-9d8e", []string{"cache private does not exist or this token cannot write to it", "--auth-token-file"}},
		{"read-only token", "private", "read-token-1", []string{"private", "write"}},
		{"unknown cache", "nosuchcache", "right-token-1", []string{"cache nosuchcache does not exist"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.ResetStats()
			r := cli(t, "", nil, "push", "-v", "--host", srv.URL(), "--cache", c.cache, "--auth-token-file", tokenFile(t, c.token), single)
			if r.code != 1 {
				t.Fatalf("exit code %d, want 1: %s", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			noSecrets(t, r, c.token)
			st := srv.Stats()
			total := 0
			for _, n := range st.Requests {
				total += n
			}
			if total > 2 || st.UploadsStarted != 0 {
				t.Errorf("%d requests for a permanent auth failure: %v", total, st.Requests)
			}
		})
	}
	// No credentials at all: for the user to fix, exit 2 (as an S3 cache
	// without keys), nothing asked of the server.
	before := srv.Stats().Requests
	r := cli(t, "", []string{"XDG_CONFIG_HOME=" + t.TempDir()}, "push", "--host", srv.URL(), "--cache", "private", single)
	if r.code != 2 || !strings.Contains(r.stderr, "neither an auth token nor a signing key") || fmt.Sprint(srv.Stats().Requests) != fmt.Sprint(before) {
		t.Errorf("no credentials: %d %s", r.code, r.stderr)
	}
}

// TestCachixCredentialSources: the token and host come from cachix.dhall
// when nothing else gives them; a flag wins over the environment, which
// wins over the config file.
func TestCachixCredentialSources(t *testing.T) {
	requireNix(t)
	t.Parallel()
	const good = "dhall-good-token-51"
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "creds", WriteTokens: []string{good}}}})
	cfgHome := t.TempDir()
	os.MkdirAll(filepath.Join(cfgHome, "cachix"), 0o700)
	writeDhall := func(token string) {
		dh := "{ authToken = \"" + token + "\"\n, hostname = \"" + srv.URL() + "\"\n, binaryCaches = [] : List { name : Text, secretKey : Text }\n}\n"
		if err := os.WriteFile(filepath.Join(cfgHome, "cachix", "cachix.dhall"), []byte(dh), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"XDG_CONFIG_HOME=" + cfgHome}
	push := func(env []string, args ...string) result {
		p := nixBuild(t, "single", t.Name()+strings.Join(args, "")+strings.Join(env, ""))
		return cli(t, "", env, append(append([]string{"push", "--cache", "creds"}, args...), p)...)
	}
	// cachix.dhall alone: token and hostname.
	writeDhall(good)
	if r := push(env); r.code != 0 {
		t.Fatalf("dhall only: %d %s", r.code, r.stderr)
	}
	// $CACHIX_AUTH_TOKEN wins over cachix.dhall.
	writeDhall("stale-dhall-token")
	if r := push(append(env, "CACHIX_AUTH_TOKEN="+good)); r.code != 0 {
		t.Fatalf("env over dhall: %d %s", r.code, r.stderr)
	}
	// A flag file wins over the environment.
	r := push(append(env, "CACHIX_AUTH_TOKEN=stale-env-token"), "--auth-token-file", tokenFile(t, good))
	if r.code != 0 {
		t.Fatalf("flag over env: %d %s", r.code, r.stderr)
	}
	// And the losing sources really were used when they are the winners.
	r = push(append(env, "CACHIX_AUTH_TOKEN=stale-env-token"))
	if r.code != 1 || !strings.Contains(r.stderr, "$CACHIX_AUTH_TOKEN") {
		t.Fatalf("stale env token: %d %s", r.code, r.stderr)
	}
	noSecrets(t, r, "stale-env-token", good)
}

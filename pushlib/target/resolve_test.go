package target_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// The signing-key test vector of cachix-protocol.md §10.
const (
	vectorCachixKey   = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA=="
	vectorPublicKey   = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
	vectorFingerprint = "1;/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello;" +
		"sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;" +
		"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello,/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"
	vectorSig = "vI1vvDAJb/EngmgGtovdLMc5QX1Sre64TBHSF4SG8uyA+Xr2XExZ/7Ux8xj2GCfm9WI/VT2mXhJSLBwxtQyvAA=="
)

// seedKey returns a Cachix-form key (bare base64 of 64 bytes) whose seed is
// 32 copies of b, and its bare public key.
func seedKey(b byte) (secret, public string) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	return base64.StdEncoding.EncodeToString(priv),
		base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
}

// fixture is an isolated world for Resolve: a temp dir holding secret
// files, a cachix.dhall path, a fake store directory and a fake environment.
type fixture struct {
	t   *testing.T
	dir string
	env map[string]string
	// flags and manifest are the two layers given to Resolve.
	flags, manifest target.Layer
	opts            target.Options
}

// newFixture builds a fixture for cache "mycache" whose cachix.dhall does
// not exist yet and whose environment is empty.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, env: map[string]string{}}
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.flags = target.Layer{Origin: target.CommandLine, Cache: "mycache"}
	f.manifest = target.Layer{Origin: target.Manifest}
	f.opts = target.Options{
		ConfigPath: filepath.Join(dir, "cachix.dhall"),
		StoreDir:   filepath.Join(dir, "store"),
		LookupEnv: func(k string) (string, bool) {
			v, ok := f.env[k]
			return v, ok
		},
	}
	return f
}

// file writes content to name (relative to the fixture dir) with mode and
// returns its path.
func (f *fixture) file(name, content string, mode os.FileMode) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask-proof
		f.t.Fatal(err)
	}
	return p
}

// dhall writes the fixture's cachix.dhall.
func (f *fixture) dhall(content string) {
	f.t.Helper()
	f.file("cachix.dhall", content, 0o600)
}

// run resolves the fixture's layers.
func (f *fixture) run() (*target.Target, error) {
	return target.Resolve(f.opts, f.flags, f.manifest)
}

// resolve runs Resolve and fails the test on error.
func (f *fixture) resolve() *target.Target {
	f.t.Helper()
	c, err := f.run()
	if err != nil {
		f.t.Fatalf("Resolve: %v", err)
	}
	return c
}

// setCache makes the fixture's cache the Cachix cache name, or a plain
// binary cache when name is "".
func (f *fixture) setCache(name string) {
	f.flags.Cache, f.flags.URL = name, ""
	if name == "" {
		f.flags.URL = "file://" + filepath.Join(f.dir, "cache")
	}
}

// host is the Cachix host the target resolved to ("" for other caches).
func host(c *target.Target) string {
	if r, ok := c.Ref.(target.Cachix); ok {
		return r.Host
	}
	return ""
}

// orDefault is the host expected when want says "none given".
func orDefault(want string) string {
	if want == "" {
		return target.DefaultCachixHost
	}
	return want
}

// TestTokenPrecedence tries every combination of the four token sources
// (so each alone and each pair) and expects the highest one to win.
func TestTokenPrecedence(t *testing.T) {
	t.Parallel()
	for mask := 0; mask < 16; mask++ {
		flag, manifest, env, dhall := mask&8 != 0, mask&4 != 0, mask&2 != 0, mask&1 != 0
		name := fmt.Sprintf("flag=%v,manifest=%v,env=%v,dhall=%v", flag, manifest, env, dhall)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var wantToken, wantSource string
			if dhall {
				f.dhall(`{ authToken = "tok-dhall", hostname = "https://cachix.org", binaryCaches = [] : List { name : Text, secretKey : Text } }`)
				wantToken, wantSource = "tok-dhall", "authToken in "+f.opts.ConfigPath
			}
			if env {
				f.env["CACHIX_AUTH_TOKEN"] = "tok-env"
				wantToken, wantSource = "tok-env", "$CACHIX_AUTH_TOKEN"
			}
			if manifest {
				f.manifest.AuthTokenFile = f.file("manifest-token", "tok-manifest\n", 0o600)
				wantToken, wantSource = "tok-manifest", "manifest authTokenFile "+f.manifest.AuthTokenFile
			}
			if flag {
				f.flags.AuthTokenFile = f.file("flag-token", "  tok-flag \n\n", 0o600)
				wantToken, wantSource = "tok-flag", "--auth-token-file "+f.flags.AuthTokenFile
			}
			c := f.resolve()
			if c.Token != wantToken || c.TokenSource != wantSource {
				t.Errorf("token = %q from %q, want %q from %q", c.Token, c.TokenSource, wantToken, wantSource)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", c.Warnings)
			}
		})
	}
}

// TestSigningKeyPrecedence does the same for the signing key, with a
// different key per source (and both key forms among them).
func TestSigningKeyPrecedence(t *testing.T) {
	t.Parallel()
	flagKey, flagPub := seedKey(1)
	manifestKey, manifestPub := seedKey(2)
	envKey, envPub := seedKey(3)
	staleKey, _ := seedKey(4)
	dhallKey, dhallPub := seedKey(5)
	otherKey, _ := seedKey(6)
	for mask := 0; mask < 16; mask++ {
		flag, manifest, env, dhall := mask&8 != 0, mask&4 != 0, mask&2 != 0, mask&1 != 0
		name := fmt.Sprintf("flag=%v,manifest=%v,env=%v,dhall=%v", flag, manifest, env, dhall)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var wantPub, wantName, wantSource string
			if dhall {
				f.dhall(fmt.Sprintf(`{ binaryCaches =
  [ { name = "mycache", secretKey = %q }
  , { name = "other", secretKey = %q }
  , { name = "mycache", secretKey = %q }
  ] }`, staleKey, otherKey, dhallKey))
				wantPub, wantName = dhallPub, "mycache.cachix.org-1"
				wantSource = `binaryCaches secretKey for "mycache" in ` + f.opts.ConfigPath
			}
			if env {
				f.env["CACHIX_SIGNING_KEY"] = envKey + "\n"
				wantPub, wantName, wantSource = envPub, "mycache.cachix.org-1", "$CACHIX_SIGNING_KEY"
			}
			if manifest {
				f.manifest.SigningKeyFile = f.file("manifest-key", "manifest-1:"+manifestKey+"\n", 0o600)
				wantPub, wantName, wantSource = manifestPub, "manifest-1", "manifest signingKeyFile "+f.manifest.SigningKeyFile
			}
			if flag {
				f.flags.SigningKeyFile = f.file("flag-key", flagKey, 0o400)
				wantPub, wantName, wantSource = flagPub, "mycache.cachix.org-1", "--signing-key-file "+f.flags.SigningKeyFile
			}
			c := f.resolve()
			if wantPub == "" {
				if c.SigningKey != nil || c.SigningKeySource != "" {
					t.Errorf("got a key %v from %q, want none", c.SigningKey, c.SigningKeySource)
				}
				return
			}
			if c.SigningKey == nil {
				t.Fatalf("no signing key, want one from %q", wantSource)
			}
			if got := c.SigningKey.PublicKeyBare(); got != wantPub || c.SigningKey.Name != wantName || c.SigningKeySource != wantSource {
				t.Errorf("key %s (%s) from %q, want %s (%s) from %q", got, c.SigningKey.Name, c.SigningKeySource, wantPub, wantName, wantSource)
			}
		})
	}
}

// TestSigningKeyForms checks the test vector in Cachix's bare form and in
// Nix's name:base64 form, and that the resolved key signs like cachix.
func TestSigningKeyForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		content    string
		cacheName  string
		keyName    string
		wantPublic string
	}{
		{"Cachix form gets the Cachix key name", vectorCachixKey, "mycache", "", "mycache.cachix.org-1:" + vectorPublicKey},
		{"Cachix form with an explicit name", vectorCachixKey + "\n", "mycache", "custom-1", "custom-1:" + vectorPublicKey},
		{"Nix form keeps its own name", "test-1:" + vectorCachixKey + "\n", "mycache", "", "test-1:" + vectorPublicKey},
		{"Nix form for a plain binary cache", "test-1:" + vectorCachixKey, "", "", "test-1:" + vectorPublicKey},
		{"Cachix form for a plain binary cache with a name", vectorCachixKey, "", "file-cache-1", "file-cache-1:" + vectorPublicKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.setCache(tt.cacheName)
			f.opts.SigningKeyName = tt.keyName
			f.flags.SigningKeyFile = f.file("key", tt.content, 0o600)
			c := f.resolve()
			if c.SigningKey == nil {
				t.Fatal("no signing key")
			}
			if got := c.SigningKey.PublicKey(); got != tt.wantPublic {
				t.Errorf("PublicKey() = %q, want %q", got, tt.wantPublic)
			}
			if got := c.SigningKey.SignBase64(vectorFingerprint); got != vectorSig {
				t.Errorf("signature = %q, want the test vector %q", got, vectorSig)
			}
		})
	}
}

func TestBareKeyWithoutNameIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.setCache("")
	f.flags.SigningKeyFile = f.file("key", vectorCachixKey, 0o600)
	_, err := f.run()
	if !errors.Is(err, signing.ErrBadKey) || !strings.Contains(err.Error(), "--signing-key-file "+f.flags.SigningKeyFile) {
		t.Errorf("error = %v, want signing.ErrBadKey naming the flag", err)
	}
}

func TestDhall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cacheName    string
		dhall        string // "" = no file
		wantToken    string
		wantKeyPub   string
		wantHostname string
	}{
		{
			name:      "cachix authtoken output, no binaryCaches entries",
			cacheName: "mycache",
			dhall: `{ authToken = "tok"
, hostname = "https://cachix.org"
, binaryCaches = [] : List { name : Text, secretKey : Text }
}
`,
			wantToken: "tok", wantHostname: "https://cachix.org",
		},
		{
			name:      "cachix generate-keypair output",
			cacheName: "mycache",
			dhall: `{ authToken =
    "tok"
, hostname = "https://cachix.example"
, binaryCaches =
  [ { name = "mycache"
    , secretKey =
        "` + vectorCachixKey + `"
    }
  ]
}
`,
			wantToken: "tok", wantKeyPub: vectorPublicKey, wantHostname: "https://cachix.example",
		},
		{
			name:      "without binaryCaches and hostname",
			cacheName: "mycache",
			dhall:     `{ authToken = "tok" }`,
			wantToken: "tok",
		},
		{
			name:      "key for another cache only",
			cacheName: "mycache",
			dhall:     `{ binaryCaches = [ { name = "other", secretKey = "` + vectorCachixKey + `" } ] }`,
		},
		{
			name:         "empty authToken means no token",
			cacheName:    "mycache",
			dhall:        `{ authToken = "  ", hostname = " https://h.example " }`,
			wantHostname: "https://h.example",
		},
		{
			name:      "multi-line token is trimmed",
			cacheName: "mycache",
			dhall:     "{ authToken = ''\n    tok\n    '' }",
			wantToken: "tok",
		},
		{
			name:      "no cachix.dhall",
			cacheName: "mycache",
		},
		{
			name:      "plain binary cache ignores cachix.dhall entirely",
			cacheName: "",
			dhall:     `{ authToken = "tok", binaryCaches = [ { name = "", secretKey = "` + vectorCachixKey + `" } ] }`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.setCache(tt.cacheName)
			if tt.dhall != "" {
				f.dhall(tt.dhall)
			}
			c := f.resolve()
			wantHost := tt.wantHostname
			if tt.cacheName != "" {
				wantHost = orDefault(wantHost)
			}
			if c.Token != tt.wantToken || host(c) != wantHost {
				t.Errorf("token %q, hostname %q; want %q, %q", c.Token, host(c), tt.wantToken, wantHost)
			}
			gotPub := ""
			if c.SigningKey != nil {
				gotPub = c.SigningKey.PublicKeyBare()
			}
			if gotPub != tt.wantKeyPub {
				t.Errorf("signing key public half %q, want %q", gotPub, tt.wantKeyPub)
			}
		})
	}
}

func TestDhallProblems(t *testing.T) {
	t.Parallel()
	t.Run("malformed is an error naming the file", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.dhall(`{ authToken = "tok-secret-value" hostname = "h" }`)
		f.flags.AuthTokenFile = f.file("token", "tok-flag", 0o600)
		_, err := f.run()
		if !errors.Is(err, target.ErrBadConfig) || !strings.Contains(err.Error(), f.opts.ConfigPath) || !strings.Contains(err.Error(), "1:34") {
			t.Errorf("error = %v, want ErrBadConfig naming %s at 1:34", err, f.opts.ConfigPath)
		}
		if err != nil && strings.Contains(err.Error(), "tok-secret-value") {
			t.Errorf("error leaks the token: %v", err)
		}
	})
	t.Run("relative path is reported absolute", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.dhall(`{ authToken = "tok" }`)
		abs := f.opts.ConfigPath
		rel, err := filepath.Rel(mustGetwd(t), abs)
		if err != nil {
			t.Fatal(err)
		}
		f.opts.ConfigPath = rel
		if c := f.resolve(); c.TokenSource != "authToken in "+abs {
			t.Errorf("TokenSource = %q, want it to name %s", c.TokenSource, abs)
		}
	})
	t.Run("unreadable is silently empty", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		if err := os.Mkdir(f.opts.ConfigPath, 0o700); err != nil { // reading a directory fails
			t.Fatal(err)
		}
		f.env["CACHIX_AUTH_TOKEN"] = "tok-env"
		c := f.resolve()
		if c.Token != "tok-env" || len(c.Warnings) != 0 {
			t.Errorf("token %q, warnings %q; want tok-env and no warnings", c.Token, c.Warnings)
		}
	})
	t.Run("empty secretKey for the cache is an error, as in cachix", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.dhall(`{ binaryCaches = [ { name = "mycache", secretKey = "" } ] }`)
		_, err := f.run()
		if !errors.Is(err, signing.ErrBadKey) || !strings.Contains(err.Error(), `binaryCaches secretKey for "mycache" in `+f.opts.ConfigPath) {
			t.Errorf("error = %v, want signing.ErrBadKey naming the entry", err)
		}
	})
	t.Run("in the store through a symlink: used, with a warning", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		target := f.file("store/abc-home-manager-files/cachix.dhall", `{ authToken = "tok" }`, 0o444)
		if err := os.Symlink(target, f.opts.ConfigPath); err != nil {
			t.Fatal(err)
		}
		c := f.resolve()
		if c.Token != "tok" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "Nix store") {
			t.Errorf("token %q, warnings %q; want tok and one store warning", c.Token, c.Warnings)
		}
	})
	t.Run("world-readable, used: warning", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.file("cachix.dhall", `{ authToken = "tok", binaryCaches = [ { name = "mycache", secretKey = "`+vectorCachixKey+`" } ] }`, 0o644)
		c := f.resolve()
		if c.Token != "tok" || c.SigningKey == nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "readable by every user") {
			t.Errorf("token %q, key %v, warnings %q; want tok, a key and one mode warning", c.Token, c.SigningKey, c.Warnings)
		}
	})
	t.Run("world-readable, not used: no warning", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.file("cachix.dhall", `{ hostname = "https://h.example" }`, 0o644)
		if c := f.resolve(); len(c.Warnings) != 0 || host(c) != "https://h.example" {
			t.Errorf("hostname %q, warnings %q; want https://h.example and none", host(c), c.Warnings)
		}
	})
}

func TestEmptyEnvironmentVariable(t *testing.T) {
	t.Parallel()
	for _, value := range []string{"", "  \n"} {
		t.Run(fmt.Sprintf("%q", value), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.dhall(`{ authToken = "tok-dhall", binaryCaches = [ { name = "mycache", secretKey = "` + vectorCachixKey + `" } ] }`)
			f.env["CACHIX_AUTH_TOKEN"] = value
			f.env["CACHIX_SIGNING_KEY"] = value
			c := f.resolve()
			if c.Token != "tok-dhall" || c.SigningKey == nil || c.SigningKey.PublicKeyBare() != vectorPublicKey {
				t.Errorf("token %q, key %v; want the cachix.dhall ones", c.Token, c.SigningKey)
			}
			want := []string{
				"$CACHIX_AUTH_TOKEN is set but empty; ignoring it",
				"$CACHIX_SIGNING_KEY is set but empty; ignoring it",
			}
			if strings.Join(c.Warnings, "|") != strings.Join(want, "|") {
				t.Errorf("warnings %q, want %q", c.Warnings, want)
			}
		})
	}
}

func TestSecretFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(f *fixture)
		wantErr error
		wantMsg []string // substrings; "{dir}" is the fixture dir
	}{
		{
			name:    "literal store path, even if missing",
			setup:   func(f *fixture) { f.flags.AuthTokenFile = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-token" },
			wantErr: target.ErrSecretInStore,
			wantMsg: []string{"--auth-token-file /nix/store/0123456789abcdfghijklmnpqrsvwxyz-token", "inside the Nix store"},
		},
		{
			name:    "store path that needs cleaning",
			setup:   func(f *fixture) { f.manifest.SigningKeyFile = "/nix/var/../store/./abc-key" },
			wantErr: target.ErrSecretInStore,
			wantMsg: []string{"manifest signingKeyFile /nix/var/../store/./abc-key", "(/nix/store/abc-key)"},
		},
		{
			name: "symlink into the configured store",
			setup: func(f *fixture) {
				target := f.file("store/abc-secret/token", "tok", 0o444)
				link := filepath.Join(f.dir, "run-secrets-token")
				if err := os.Symlink(target, link); err != nil {
					f.t.Fatal(err)
				}
				f.manifest.AuthTokenFile = link
			},
			wantErr: target.ErrSecretInStore,
			wantMsg: []string{"manifest authTokenFile {dir}/run-secrets-token", "({dir}/store/abc-secret/token)"},
		},
		{
			name: "relative path through a symlinked directory into the store",
			setup: func(f *fixture) {
				f.file("store/abc-dir/key", vectorCachixKey, 0o444)
				if err := os.Symlink(filepath.Join(f.dir, "store", "abc-dir"), filepath.Join(f.dir, "secrets")); err != nil {
					f.t.Fatal(err)
				}
				rel, err := filepath.Rel(mustGetwd(f.t), filepath.Join(f.dir, "secrets", "key"))
				if err != nil {
					f.t.Fatal(err)
				}
				f.flags.SigningKeyFile = rel
			},
			wantErr: target.ErrSecretInStore,
			wantMsg: []string{"--signing-key-file ", "{dir}/store/abc-dir/key"},
		},
		{
			name:    "missing flag file",
			setup:   func(f *fixture) { f.flags.AuthTokenFile = filepath.Join(f.dir, "nope") },
			wantErr: target.ErrUnreadable,
			wantMsg: []string{"reading auth token from --auth-token-file {dir}/nope", "no such file"},
		},
		{
			name: "missing manifest file is not skipped in favour of the environment",
			setup: func(f *fixture) {
				f.manifest.SigningKeyFile = filepath.Join(f.dir, "nope")
				f.env["CACHIX_SIGNING_KEY"] = vectorCachixKey
			},
			wantErr: fs.ErrNotExist,
			wantMsg: []string{"reading signing key from manifest signingKeyFile {dir}/nope", "cannot read secret file"},
		},
		{
			name:    "directory",
			setup:   func(f *fixture) { f.flags.AuthTokenFile = f.dir },
			wantErr: target.ErrUnreadable,
			wantMsg: []string{"is a directory"},
		},
		{
			name:    "empty file",
			setup:   func(f *fixture) { f.flags.AuthTokenFile = f.file("empty", "", 0o600) },
			wantErr: target.ErrEmptySecret,
			wantMsg: []string{"--auth-token-file {dir}/empty"},
		},
		{
			name:    "whitespace-only file",
			setup:   func(f *fixture) { f.flags.SigningKeyFile = f.file("blank", " \n\t\n", 0o600) },
			wantErr: target.ErrEmptySecret,
			wantMsg: []string{"--signing-key-file {dir}/blank"},
		},
		{
			name:    "oversized file",
			setup:   func(f *fixture) { f.flags.AuthTokenFile = f.file("big", strings.Repeat("a", 70<<10), 0o600) },
			wantErr: target.ErrUnreadable,
			wantMsg: []string{"larger than 64 KiB"},
		},
		{
			name:    "token with an inner line break",
			setup:   func(f *fixture) { f.flags.AuthTokenFile = f.file("two-lines", "tok-line-one\ntok-line-two\n", 0o600) },
			wantErr: target.ErrBadToken,
			wantMsg: []string{"using auth token from --auth-token-file {dir}/two-lines", "whitespace"},
		},
		{
			name: "environment file instead of a token file",
			setup: func(f *fixture) {
				f.flags.AuthTokenFile = f.file("envfile", "CACHIX_AUTH_TOKEN=tok-secret-value\n", 0o600)
			},
			wantErr: target.ErrBadToken,
			wantMsg: []string{"environment file"},
		},
		{
			name:    "unparsable signing key",
			setup:   func(f *fixture) { f.flags.SigningKeyFile = f.file("badkey", "not-a-key-secret-value", 0o600) },
			wantErr: signing.ErrBadKey,
			wantMsg: []string{"parsing signing key from --signing-key-file {dir}/badkey"},
		},
		{
			name:    "signing key of the wrong length in the environment",
			setup:   func(f *fixture) { f.env["CACHIX_SIGNING_KEY"] = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRob" },
			wantErr: signing.ErrBadKey,
			wantMsg: []string{"parsing signing key from $CACHIX_SIGNING_KEY"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tt.setup(f)
			c, err := f.run()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve = %v, %v; want an error matching %v", c, err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				m = strings.ReplaceAll(m, "{dir}", f.dir)
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			for _, secret := range []string{"tok-secret-value", "tok-line", "not-a-key", "AQIDBAUG"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks secret content", err)
				}
			}
		})
	}
}

func TestUnreadableFileAsNonRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root can read a mode-000 file")
	}
	f := newFixture(t)
	f.flags.AuthTokenFile = f.file("locked", "tok", 0o000)
	_, err := f.run()
	if !errors.Is(err, target.ErrUnreadable) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("error = %v, want ErrUnreadable and fs.ErrPermission", err)
	}
}

func TestFlagShadowsUnreadableManifestFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.flags.AuthTokenFile = f.file("token", "tok-flag", 0o600)
	f.manifest.AuthTokenFile = "/nix/store/abc-token" // would be refused if read
	f.flags.SigningKeyFile = f.file("key", vectorCachixKey, 0o600)
	f.manifest.SigningKeyFile = filepath.Join(f.dir, "missing")
	c := f.resolve()
	if c.Token != "tok-flag" || c.SigningKey == nil {
		t.Errorf("token %q, key %v; want the flag's", c.Token, c.SigningKey)
	}
}

func TestWorldReadableSecretFileWarns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.flags.AuthTokenFile = f.file("token", "tok", 0o644)
	f.flags.SigningKeyFile = f.file("key", vectorCachixKey, 0o640)
	c := f.resolve()
	want := "auth token file " + f.flags.AuthTokenFile + " is readable by every user (mode 0644); restrict it, e.g. chmod 600"
	if len(c.Warnings) != 1 || c.Warnings[0] != want {
		t.Errorf("warnings %q, want exactly %q", c.Warnings, want)
	}
}

// TestNoSecretLeaks resolves successfully and unsuccessfully from every
// source with distinctive secrets and checks that no error, source string,
// warning or formatted Credentials value contains them.
func TestNoSecretLeaks(t *testing.T) {
	t.Parallel()
	const token = "eyJhbGciOiJIUzI1NiJ9.TOKENPAYLOAD.SIGNATURE"
	keyPart := vectorCachixKey[10:40] // any recognisable stretch of the key
	secrets := []string{token, "TOKENPAYLOAD", vectorCachixKey, keyPart}
	setups := map[string]func(f *fixture){
		"flag files": func(f *fixture) {
			f.flags.AuthTokenFile = f.file("t", token, 0o644)
			f.flags.SigningKeyFile = f.file("k", "test-1:"+vectorCachixKey, 0o644)
		},
		"manifest files": func(f *fixture) {
			f.manifest.AuthTokenFile = f.file("t", token+"\n", 0o600)
			f.manifest.SigningKeyFile = f.file("k", vectorCachixKey, 0o600)
		},
		"environment": func(f *fixture) {
			f.env["CACHIX_AUTH_TOKEN"] = token
			f.env["CACHIX_SIGNING_KEY"] = vectorCachixKey
		},
		"cachix.dhall": func(f *fixture) {
			f.file("cachix.dhall", `{ authToken = "`+token+`", binaryCaches = [ { name = "mycache", secretKey = "`+vectorCachixKey+`" } ] }`, 0o644)
		},
		"bad token file": func(f *fixture) {
			f.flags.AuthTokenFile = f.file("t", token+" "+token, 0o600)
		},
		"bad key in environment": func(f *fixture) {
			f.env["CACHIX_SIGNING_KEY"] = keyPart
		},
		"truncated key in file": func(f *fixture) {
			f.flags.SigningKeyFile = f.file("k", vectorCachixKey[:80], 0o600)
		},
		"key with bad name in cachix.dhall": func(f *fixture) {
			f.dhall(`{ binaryCaches = [ { name = "mycache", secretKey = ":` + vectorCachixKey + `" } ] }`)
		},
		"malformed cachix.dhall": func(f *fixture) {
			f.dhall(`{ authToken = ` + token + ` }`)
		},
		"malformed cachix.dhall with an unterminated secret": func(f *fixture) {
			f.dhall(`{ authToken = "` + token)
		},
		"store path": func(f *fixture) {
			f.flags.AuthTokenFile = "/nix/store/abc-" + "token"
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			setup(f)
			c, err := f.run()
			var texts []string
			if err != nil {
				texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			} else {
				texts = append(texts, c.TokenSource, c.SigningKeySource, fmt.Sprint(c.SigningKey),
					fmt.Sprintf("%v", c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", *c), fmt.Sprintf("%s", c))
				texts = append(texts, c.Warnings...)
			}
			for _, text := range texts {
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%q contains a secret", text)
					}
				}
			}
		})
	}
}

func TestCredentialsString(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.env["CACHIX_AUTH_TOKEN"] = "tok"
	f.env["CACHIX_SIGNING_KEY"] = vectorCachixKey
	c := f.resolve()
	want := "Cachix cache mycache (auth token from $CACHIX_AUTH_TOKEN, signing key mycache.cachix.org-1 from $CACHIX_SIGNING_KEY)"
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (&target.Target{}).String(); got != "no auth token, no signing key" {
		t.Errorf("empty String() = %q", got)
	}
}

func TestDefaultConfigPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/cachix/cachix.dhall"},
		{"HOME", map[string]string{"HOME": "/home/u"}, "/home/u/.config/cachix/cachix.dhall"},
		{"empty XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": "", "HOME": "/home/u"}, "/home/u/.config/cachix/cachix.dhall"},
		{"relative XDG_CONFIG_HOME is ignored", map[string]string{"XDG_CONFIG_HOME": "cfg", "HOME": "/home/u"}, "/home/u/.config/cachix/cachix.dhall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := target.DefaultConfigPath(func(k string) (string, bool) {
				v, ok := tt.env[k]
				return v, ok
			})
			if got != tt.want {
				t.Errorf("DefaultConfigPath = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("no HOME falls back to the user database", func(t *testing.T) {
		t.Parallel()
		got := target.DefaultConfigPath(func(string) (string, bool) { return "", false })
		if !strings.HasSuffix(got, "/.config/cachix/cachix.dhall") || !filepath.IsAbs(got) {
			t.Errorf("DefaultConfigPath = %q, want an absolute ~/.config/cachix/cachix.dhall", got)
		}
	})
}

// TestRealEnvironment checks the defaults (os.LookupEnv and the XDG path)
// through the process environment; not parallel because of t.Setenv.
func TestRealEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("CACHIX_AUTH_TOKEN", "")
	t.Setenv("CACHIX_SIGNING_KEY", vectorCachixKey)
	if err := os.MkdirAll(filepath.Join(dir, "cachix"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cachix", "cachix.dhall")
	if err := os.WriteFile(cfg, []byte(`{ authToken = "tok-dhall", hostname = "https://h.example" }`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := target.Resolve(target.Options{}, target.Layer{Cache: "mycache"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "tok-dhall" || c.TokenSource != "authToken in "+cfg || host(c) != "https://h.example" {
		t.Errorf("token %q from %q, hostname %q", c.Token, c.TokenSource, host(c))
	}
	if c.SigningKey == nil || c.SigningKeySource != "$CACHIX_SIGNING_KEY" {
		t.Errorf("signing key %v from %q, want one from $CACHIX_SIGNING_KEY", c.SigningKey, c.SigningKeySource)
	}
}

// mustGetwd returns the working directory.
func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestURLFieldRefusesCacheNames: --to and a manifest's cache.url take a
// binary cache URL; a Cachix name or an http(s):// URL there is bad input
// whose message says where a Cachix cache is named instead.
func TestURLFieldRefusesCacheNames(t *testing.T) {
	for _, raw := range []string{"mycache", "http://127.0.0.1:9", "https://mycache.cachix.org"} {
		_, err := target.ParseURL(raw)
		if err == nil {
			t.Fatalf("ParseURL(%q) accepted it", raw)
		}
		if !errors.Is(err, fault.ErrBadInput) {
			t.Errorf("ParseURL(%q): %v is not bad input", raw, err)
		}
		for _, want := range []string{raw, "file:///path or s3://bucket", "--cache NAME"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseURL(%q): %q does not say %q", raw, err, want)
			}
		}
	}
}

// URL schemes are case-insensitive; a bare absolute path is said to need
// file://.
func TestParseURLSchemeCaseAndPaths(t *testing.T) {
	r, err := target.ParseURL("FILE:///srv/cache")
	if err != nil || r.Key() != "file:///srv/cache" {
		t.Errorf("FILE:///srv/cache: %v, %v", r, err)
	}
	r, err = target.ParseURL("S3://bucket?region=eu-west-1")
	if err != nil || !strings.HasPrefix(r.Key(), "s3://bucket") {
		t.Errorf("S3://bucket: %v, %v", r, err)
	}
	if _, err = target.ParseURL("/srv/cache"); err == nil || !strings.Contains(err.Error(), "given as file:///srv/cache") {
		t.Errorf("/srv/cache: %v", err)
	}
}

// A token file given for a plain binary cache is not read (a missing one
// does not fail the push) and is said to do nothing.
func TestTokenFileForAPlainCache(t *testing.T) {
	f := newFixture(t)
	f.flags = target.Layer{Origin: target.CommandLine, URL: "file://" + f.dir + "/cache", AuthTokenFile: f.dir + "/no-such-token"}
	tgt, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	if tgt.Token != "" || !slices.ContainsFunc(tgt.Warnings, func(w string) bool {
		return strings.Contains(w, "--auth-token-file "+f.dir+"/no-such-token is for Cachix caches")
	}) {
		t.Errorf("token %q, warnings %q", tgt.Token, tgt.Warnings)
	}
}

// A cachix config named for a plain binary cache is not read (a missing
// one does not fail the push) and is said to do nothing.
func TestConfigFileForAPlainCache(t *testing.T) {
	f := newFixture(t)
	f.opts.ConfigPath, f.opts.ConfigRequired = f.dir+"/no-such.dhall", true
	f.flags = target.Layer{Origin: target.CommandLine, URL: "file://" + f.dir + "/cache"}
	tgt, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tgt.Warnings, func(w string) bool {
		return strings.Contains(w, "the cachix config "+f.dir+"/no-such.dhall (--config) is for Cachix caches")
	}) {
		t.Errorf("warnings %q", tgt.Warnings)
	}
}

// -s/-n for a plain binary cache are said to do nothing.
func TestChunkFlagsForAPlainCache(t *testing.T) {
	f := newFixture(t)
	f.flags = target.Layer{Origin: target.CommandLine, URL: "file://" + f.dir + "/cache", ChunkSize: 16 << 20}
	tgt, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tgt.Warnings, func(w string) bool { return strings.Contains(w, "apply to Cachix uploads") }) {
		t.Errorf("warnings %q", tgt.Warnings)
	}
}

// --signing-key-name without a key is said to sign nothing.
func TestSigningKeyNameWithoutKey(t *testing.T) {
	f := newFixture(t)
	f.flags = target.Layer{Origin: target.CommandLine, URL: "file://" + f.dir + "/cache"}
	f.opts.SigningKeyName = "cache.example.org-1"
	tgt, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	if tgt.SigningKey != nil || !slices.ContainsFunc(tgt.Warnings, func(w string) bool { return strings.Contains(w, "the narinfos are not signed") }) {
		t.Errorf("key %v, warnings %q", tgt.SigningKey, tgt.Warnings)
	}
}

package activate_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

func TestWithRoot(t *testing.T) {
	t.Parallel()
	const gen = "/nix/store/00000000000000000000000000000000-nixos-system-laptop"
	const pkg = "/nix/store/11111111111111111111111111111111-hello"
	raw := []byte(`{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + pkg + `"}],"future":{"x":1}}`)
	out, err := activate.WithRoot(raw, activate.Root{StorePath: gen,
		Pin: &manifest.Pin{Name: "laptop-x86_64-linux-generation", Keep: &backend.Keep{Kind: backend.KeepForever}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(out, "m.json")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(m.Paths) != 2 || m.Paths[1].StorePath != gen || m.Paths[1].Name != "generation" ||
		m.Paths[1].Pin == nil || m.Paths[1].Pin.Name != "laptop-x86_64-linux-generation" || m.Paths[1].Pin.Keep.Kind != backend.KeepForever {
		t.Fatalf("paths: %+v", m.Paths)
	}
	var top map[string]json.RawMessage
	json.Unmarshal(out, &top)
	if string(top["future"]) != `{"x":1}` {
		t.Errorf("unknown fields lost: %s", out)
	}
	// Already listed: unchanged. The same input: the same bytes (one queue entry).
	if again, _ := activate.WithRoot(raw, activate.Root{StorePath: pkg}); string(again) != string(raw) {
		t.Errorf("a listed root was added again: %s", again)
	}
	if twice, _ := activate.WithRoot(raw, activate.Root{StorePath: gen, Pin: m.Paths[1].Pin}); string(twice) != string(out) {
		t.Errorf("not deterministic:\n%s\n%s", twice, out)
	}
	if _, err := activate.WithRoot([]byte(`[1]`), activate.Root{StorePath: gen}); err == nil {
		t.Error("a manifest that is not an object was accepted")
	}
}

func TestCheckRoot(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	gen := filepath.Join(store, "00000000000000000000000000000000-home-manager-generation")
	os.Mkdir(gen, 0o755)
	link := filepath.Join(t.TempDir(), "current")
	os.Symlink(gen, link)
	if got, err := activate.CheckRoot(link, store); err != nil || got != gen {
		t.Errorf("CheckRoot(symlink) = %q, %v", got, err)
	}
	for _, bad := range []string{"/etc", gen + "/sub", filepath.Join(store, "short"), filepath.Join(store, "11111111111111111111111111111111-gone")} {
		if _, err := activate.CheckRoot(bad, store); err == nil || !strings.Contains(err.Error(), "--root") {
			t.Errorf("CheckRoot(%s) = %v", bad, err)
		}
	}
}

func TestRequestStartAndCredentials(t *testing.T) {
	t.Parallel()
	list := filepath.Join(t.TempDir(), "run", "nixos", "activation-restart-list")
	for i := 0; i < 2; i++ {
		if err := activate.RequestStart(list, "cachix-select.service"); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(list); string(b) != "cachix-select.service\ncachix-select.service\n" {
		t.Errorf("list = %q", b)
	}
	if err := activate.RequestStart(filepath.Join(list, "x"), "u"); err == nil {
		t.Error("a list under a file was written")
	}
	ok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(ok, []byte("t"), 0o600)
	if err := activate.CheckCredentials("", ok); err != nil {
		t.Error(err)
	}
	missing := ok + "-missing"
	if err := activate.CheckCredentials(ok, missing); !errors.Is(err, activate.ErrCredentialMissing) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing credential: %v", err)
	}
}

// TestRecordsFollowTheConfiguredHost: a manifest naming a Cachix cache but
// no host pushes to cachix.dhall's hostname, so that is the host its
// records are kept under; the fast path looks there, not at cachix.org's.
func TestRecordsFollowTheConfiguredHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cachix.dhall")
	if err := os.WriteFile(cfg, []byte(`{ hostname = "https://cachix.example.org/" }`), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := queue.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	// A real store path, so that recording keeps it (gone paths are dropped).
	sp := filepath.Join(dir, "store", "00000000000000000000000000000000-hello")
	if err := os.MkdirAll(sp, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.ParseWith([]byte(`{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"`+sp+`"}]}`), "m.json",
		manifest.Options{StoreDir: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	opts := activate.Options{Resolve: target.Options{ConfigPath: cfg, LookupEnv: func(string) (string, bool) { return "", false }}}
	if err := d.Record("cachix:https://cachix.org/c", []string{queue.Key(sp, "")}); err != nil {
		t.Fatal(err)
	}
	if todo, err := activate.Unconfirmed(d, m, opts, time.Now()); err != nil || len(todo) != 1 {
		t.Fatalf("a confirmation by cachix.org counted for cachix.example.org: %v, %v", todo, err)
	}
	if err := d.Record("cachix:https://cachix.example.org/c", []string{queue.Key(sp, "")}); err != nil {
		t.Fatal(err)
	}
	if todo, err := activate.Unconfirmed(d, m, opts, time.Now()); err != nil || len(todo) != 0 {
		t.Fatalf("the configured host's confirmation was not found: %v, %v", todo, err)
	}
}

package activate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// fakeLauncher records the launches Run asks for.
type fakeLauncher struct {
	launched []string
	err      error
}

func (f *fakeLauncher) Launch(_ context.Context, d *queue.Dir, m *manifest.Manifest) (string, error) {
	f.launched = append(f.launched, m.File)
	return "fake launch", f.err
}

// TestRunDecisions: activation's decisions with an injected launcher. A
// manifest with something new is queued and launched; once its paths are
// recorded, it is the fast path (nothing queued, nothing launched); a
// running flush takes new work without a launch; a launch that fails
// leaves the manifest queued and says so; a bad mode is bad input.
func TestRunDecisions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	sp := filepath.Join(storeDir, "00000000000000000000000000000000-hello")
	if err := os.MkdirAll(sp, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "m.json")
	if err := os.WriteFile(file, []byte(`{"version":1,"cache":{"url":"file:///srv/cache"},"paths":[{"storePath":"`+sp+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	req := activate.Request{File: file, Mode: activate.Background, StateDir: state,
		Options: activate.Options{Store: &store.Store{Dir: storeDir}, Resolve: target.Options{ConfigPath: filepath.Join(dir, "none.dhall")}}}
	ctx := context.Background()

	l := &fakeLauncher{}
	out, err := activate.Run(ctx, req, l)
	if err != nil || !out.Queued || out.New != 1 || out.Target != "file:///srv/cache" || out.Started != "fake launch" || len(l.launched) != 1 {
		t.Fatalf("new work: %+v, %v, launched %v", out, err, l.launched)
	}
	d, _ := queue.Open(state)
	if entries, _, _ := d.List(); len(entries) != 1 {
		t.Errorf("%d queue entries, want 1", len(entries))
	}

	lock, err := d.TryLock(false)
	if err != nil {
		t.Fatal(err)
	}
	out, err = activate.Run(ctx, req, l)
	lock.Release()
	if err != nil || !out.Queued || !strings.Contains(out.Started, "already running") || len(l.launched) != 1 {
		t.Errorf("busy: %+v, %v, launched %v", out, err, l.launched)
	}

	l.err = errors.New("no systemd")
	if out, err = activate.Run(ctx, req, l); err == nil || !out.Queued || !strings.Contains(err.Error(), "1 path queued for file:///srv/cache") {
		t.Errorf("failed launch: %+v, %v", out, err)
	}

	// A file cache filters upstream paths by default: its records carry
	// that selection's fingerprint.
	if err := d.Record("file:///srv/cache", []string{queue.Key(sp, "")}); err != nil {
		t.Fatal(err)
	}
	if out, err = activate.Run(ctx, req, &fakeLauncher{}); err != nil || !out.Queued {
		t.Errorf("a record made without the selection must not count: %+v, %v", out, err)
	}
	if err := d.Record("file:///srv/cache", []string{queue.RootKey(sp, false, selection.Rules{}.Effective("file").Fingerprint(), "")}); err != nil {
		t.Fatal(err)
	}
	l = &fakeLauncher{}
	if out, err = activate.Run(ctx, req, l); err != nil || out.Queued || out.New != 0 || len(l.launched) != 0 {
		t.Errorf("fast path: %+v, %v, launched %v", out, err, l.launched)
	}

	req.Mode = "sideways"
	if _, err := activate.Run(ctx, req, l); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Errorf("bad mode: %v", err)
	}
}

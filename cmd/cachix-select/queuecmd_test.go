package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/queue"
)

// TestQueueListSeesTheSystemQueueAsRoot: without --state-dir, root's
// queue list shows its own queue and the NixOS system queue; another
// user's shows only its own; --state-dir shows exactly that directory.
// Not parallel: it sets the environment and systemStateDir.
func TestQueueListSeesTheSystemQueueAsRoot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "xdg"))
	old := systemStateDir
	systemStateDir = filepath.Join(dir, "system")
	t.Cleanup(func() { systemStateDir = old })

	manifest := func(cache string) []byte {
		return []byte(`{"version":1,"cache":{"url":"file:///srv/` + cache + `"},"paths":[]}`)
	}
	for dir, cache := range map[string]string{queue.DefaultDir(): "user-cache", systemStateDir: "system-cache"} {
		d, err := queue.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Enqueue("/m.json", manifest(cache)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(args ...string) []queueRow {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"cachix-select", "queue", "list", "--json"}, args...), strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("queue list: %d %s", code, errOut.String())
		}
		var rows []queueRow
		if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		return rows
	}
	caches := func(rows []queueRow) string {
		var c []string
		for _, r := range rows {
			c = append(c, r.Cache+"@"+filepath.Base(r.StateDir))
		}
		return strings.Join(c, " ")
	}
	got := caches(list())
	want := "file:///srv/user-cache@cachix-select"
	if os.Geteuid() == 0 {
		want += " file:///srv/system-cache@system"
	}
	if got != want {
		t.Errorf("queue list (uid %d) = %q, want %q", os.Geteuid(), got, want)
	}
	if got := caches(list("--state-dir", systemStateDir)); got != "file:///srv/system-cache@system" {
		t.Errorf("queue list --state-dir = %q", got)
	}
}

// TestManifestCheckAppliesPushRules: manifest check refuses what push
// refuses (one rule for compression: xz levels stop at 9), with the same
// one-line error, before anything touches the store or the network.
func TestManifestCheckAppliesPushRules(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "m.json")
	if err := os.WriteFile(file, []byte(`{"version":1,"cache":{"url":"file:///srv/c"},"paths":[],`+
		`"push":{"compression":"xz","compressionLevel":12}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, cmd := range [][]string{{"manifest", "check"}, {"push"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(append([]string{"cachix-select"}, cmd...), file), strings.NewReader(""), &out, &errOut)
		msg := strings.TrimSpace(errOut.String())
		if code != exitBadInput || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "push.compressionLevel") || !strings.Contains(msg, "0–9") {
			t.Errorf("%s: exit %d, %q; want exit 2 and one line about push.compressionLevel's 0–9", cmd, code, msg)
		}
		lines = append(lines, msg)
	}
	if lines[0] != lines[1] {
		t.Errorf("manifest check and push disagree:\n%s\n%s", lines[0], lines[1])
	}
}

// TestQueueMissingStateDirNotMade: queue list and flush with a
// --state-dir that does not exist (a typo) say so and do not make it.
func TestQueueMissingStateDirNotMade(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"flush"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(append([]string{"cachix-select", "queue"}, args...), "--state-dir", dir), strings.NewReader(""), &out, &errOut)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut.String())
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("%v made %s", args, dir)
		}
		if got := out.String() + errOut.String(); !strings.Contains(got, "does not exist") && got != "[]\n" {
			t.Errorf("%v printed %q", args, got)
		}
	}
}

package queue_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/queue"
)

func TestEnqueueListRemove(t *testing.T) {
	t.Parallel()
	d, err := queue.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.Path); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode: %v %v", fi, err)
	}
	a, err := d.Enqueue("/a.json", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if _, err := d.Enqueue("/b.json", []byte(`{"b":1}`)); err != nil {
		t.Fatal(err)
	}
	// The same content again is the same entry, keeping its history.
	a.Attempts, a.LastError = 2, "offline"
	if err := d.Save(a); err != nil {
		t.Fatal(err)
	}
	again, err := d.Enqueue("/a-moved.json", []byte(`{"a":1}`))
	if err != nil || again.ID != a.ID || again.Attempts != 2 || again.LastError != "offline" {
		t.Fatalf("re-enqueue: %+v %v", again, err)
	}
	if _, err := d.Enqueue("/bad.json", []byte(`{`)); err == nil {
		t.Error("invalid JSON was queued")
	}
	entries, bad, err := d.List()
	if err != nil || len(bad) != 0 || len(entries) != 2 || entries[0].ID != a.ID {
		t.Fatalf("List = %+v %v %v", entries, bad, err)
	}
	if err := d.Remove(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(a.ID); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	// A damaged entry is reported, not silently skipped.
	os.WriteFile(filepath.Join(d.Path, "queue", "broken.json"), []byte("{"), 0o600)
	entries, bad, _ = d.List()
	if len(entries) != 1 || len(bad) != 1 {
		t.Fatalf("entries %d, bad %d", len(entries), len(bad))
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	d, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.TryLock(false)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Busy() {
		t.Error("Busy while locked = false")
	}
	if _, err := d.TryLock(false); !errors.Is(err, queue.ErrLocked) {
		t.Errorf("second lock: %v", err)
	}
	l.Release()
	if d.Busy() {
		t.Error("Busy after release")
	}
}

func TestRecords(t *testing.T) {
	t.Parallel()
	d, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	existing := t.TempDir() // stands for a store path that still exists
	gone := filepath.Join(existing, "collected")
	build := queue.RootKey(existing, true, "abc", "my/pin#1")
	goneBuild := queue.NotPushedKey(queue.RootKey(gone, true, "abc", "p"))
	if err := d.Record("c1", []string{queue.Key(existing, ""), queue.Key(existing, "pin"), gone, build,
		queue.NotPushedKey(build), goneBuild}); err != nil {
		t.Fatal(err)
	}
	if build != existing+"!build!sel=abc#my/pin#1" || queue.NotPushedKey(build) != existing+"!build!sel=abc!not-pushed#my/pin#1" {
		t.Errorf("keys %q, %q", build, queue.NotPushedKey(build))
	}
	r, err := d.LoadRecords()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if !r.Confirmed("c1", existing, now) || !r.Confirmed("c1", existing+"#pin", now) {
		t.Error("recorded keys are not confirmed")
	}
	if r.Confirmed("c2", existing, now) {
		t.Error("a record leaked to another cache")
	}
	if r.Confirmed("c1", existing, now.Add(queue.RecordTTL+time.Minute)) {
		t.Error("records must expire")
	}
	// The next write prunes paths that left the store.
	if err := d.Record("c1", nil); err != nil {
		t.Fatal(err)
	}
	r, _ = d.LoadRecords()
	if r.Confirmed("c1", gone, now) || r.Confirmed("c1", goneBuild, now) {
		t.Error("a garbage-collected path was kept")
	}
	if !r.Confirmed("c1", build, now) || !r.Confirmed("c1", queue.NotPushedKey(build), now) {
		t.Error("keys with a closure, a selection and a pin holding '/' and '#' were dropped")
	}
	// A damaged file costs a re-check, not an error.
	os.WriteFile(filepath.Join(d.Path, "pushed.json"), []byte("{"), 0o600)
	if r, err := d.LoadRecords(); err != nil || r.Confirmed("c1", existing, now) {
		t.Errorf("damaged records: %v", err)
	}
}

// TestListOddDirectoryName: a state directory whose name holds glob
// metacharacters (a backslash, brackets, a star) still lists its entries.
func TestListOddDirectoryName(t *testing.T) {
	t.Parallel()
	d, err := queue.Open(filepath.Join(t.TempDir(), `st %h $HOME 'q"uote\back [x]*?`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enqueue("/m.json", []byte(`{"m":1}`)); err != nil {
		t.Fatal(err)
	}
	entries, bad, err := d.List()
	if err != nil || len(bad) != 0 || len(entries) != 1 {
		t.Fatalf("List = %d entries, %v, %v", len(entries), bad, err)
	}
}

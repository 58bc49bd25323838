package pushlib_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/events/eventstest"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// fakeStore serves closures of directories made in a temp dir.
type fakeStore struct{ infos map[string]*store.PathInfo }

func (f *fakeStore) ClosurePaths(ctx context.Context, roots []string) ([]string, error) {
	m, err := f.closure(ctx, roots)
	var out []string
	for p := range m {
		out = append(out, p)
	}
	return out, err
}

func (f *fakeStore) Query(_ context.Context, paths []string) (map[string]*store.PathInfo, error) {
	out := map[string]*store.PathInfo{}
	for _, p := range paths {
		pi, ok := f.infos[p]
		if !ok {
			return nil, &store.InvalidPathError{Paths: []string{p}}
		}
		out[p] = pi
	}
	return out, nil
}

func (f *fakeStore) closure(_ context.Context, roots []string) (map[string]*store.PathInfo, error) {
	out := map[string]*store.PathInfo{}
	var walk func(string)
	walk = func(p string) {
		if _, ok := out[p]; ok {
			return
		}
		pi, ok := f.infos[p]
		if !ok {
			return
		}
		out[p] = pi
		for _, r := range pi.References {
			walk(r)
		}
	}
	for _, r := range roots {
		if _, ok := f.infos[r]; !ok {
			return nil, &store.InvalidPathError{Paths: []string{r}}
		}
		walk(r)
	}
	return out, nil
}

// newFakeStore makes one directory per name with real NAR hashes; refs
// maps a name to the names it refers to.
func newFakeStore(t *testing.T, refs map[string][]string) (*fakeStore, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	paths := map[string]string{}
	for name := range refs {
		paths[name] = filepath.Join(dir, fmt.Sprintf("%032d-%s", len(paths), name))
	}
	fs := &fakeStore{infos: map[string]*store.PathInfo{}}
	for name, rs := range refs {
		p := paths[name]
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "data"), []byte(strings.Repeat(name, 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		cw := &countWriter{w: h}
		if err := nar.DumpPath(cw, p); err != nil {
			t.Fatal(err)
		}
		pi := &store.PathInfo{Path: p, NarHash: *nixhash.MustNewHash(nixhash.SHA256, h.Sum(nil)), NarSize: cw.n}
		for _, r := range rs {
			pi.References = append(pi.References, paths[r])
		}
		fs.infos[p] = pi
	}
	return fs, paths
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) { c.n += uint64(len(p)); return c.w.Write(p) }

// fakeBackend records what happens and can fail chosen paths.
type fakeBackend struct {
	mu        sync.Mutex
	present   map[string]bool
	committed []string
	uploads   map[string]int
	failUp    map[string]int // path → number of upload failures before success (-1 = always)
	permanent bool
	pins      []backend.Pin
	pinner    bool
	// upstream are paths another cache has: the commit check accepts
	// them as references.
	upstream map[string]bool
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{present: map[string]bool{}, uploads: map[string]int{}, failUp: map[string]int{}}
}

func (f *fakeBackend) String() string                             { return "fake" }
func (f *fakeBackend) Open(context.Context) (backend.Info, error) { return backend.Info{}, nil }
func (f *fakeBackend) Missing(_ context.Context, paths []string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]bool{}
	for _, p := range paths {
		if !f.present[p] {
			m[p] = true
		}
	}
	return m, nil
}

func (f *fakeBackend) Upload(ctx context.Context, info *store.PathInfo, c narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	f.mu.Lock()
	f.uploads[info.Path]++
	n := f.uploads[info.Path]
	fails := f.failUp[info.Path]
	f.mu.Unlock()
	if fails == -1 || n <= fails {
		if f.permanent {
			return nil, fmt.Errorf("%w: simulated", backend.ErrRejected)
		}
		return nil, errors.New("simulated transient failure")
	}
	res, err := stream(ctx, io.Discard)
	if err != nil {
		return nil, err
	}
	return &fakePending{f: f, info: info, res: res}, nil
}

func (f *fakeBackend) CreatePin(_ context.Context, p backend.Pin) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins = append(f.pins, p)
	return nil
}

type fakePending struct {
	f    *fakeBackend
	info *store.PathInfo
	res  narstream.Result
}

func (p *fakePending) Result() narstream.Result      { return p.res }
func (p *fakePending) Discard(context.Context) error { return nil }

// Commit checks the pipeline's promise: every reference is already present.
func (p *fakePending) Commit(context.Context) error {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	for _, r := range p.info.References {
		if r != p.info.Path && !p.f.present[r] && !p.f.upstream[r] {
			return fmt.Errorf("%w: %s committed before its reference %s", backend.ErrRejected, p.info.Path, r)
		}
	}
	p.f.present[p.info.Path] = true
	p.f.committed = append(p.f.committed, p.info.Path)
	return nil
}

// pinningBackend adds pins to the fake.
type pinningBackend struct{ *fakeBackend }

var graph = map[string][]string{
	"libc": {"libc"}, // self-reference
	"zlib": {"libc"},
	"ssl":  {"libc", "zlib"},
	"curl": {"ssl", "zlib", "libc"},
	"app":  {"curl", "libc"},
	"tool": {"libc"},
}

func TestPushOrderAndSkip(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := newFakeBackend()
	b.present[paths["libc"]] = true
	rec := &eventstest.Recorder{}
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, Target: &target.Target{Jobs: 4}, Events: rec,
		Roots: []pushlib.Root{{Path: paths["app"]}, {Path: paths["tool"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Closure != 6 || res.Present != 1 || len(res.Pushed) != 5 {
		t.Errorf("closure %d present %d pushed %d", res.Closure, res.Present, len(res.Pushed))
	}
	if b.uploads[paths["libc"]] != 0 {
		t.Error("a present path was uploaded")
	}
	if len(res.Confirmed) != 2 {
		t.Errorf("confirmed = %v", res.Confirmed)
	}
	if plan := rec.OfKind(events.Plan); len(plan) != 1 || plan[0].Missing != 5 || plan[0].Present != 1 {
		t.Errorf("plan events = %+v", plan)
	}
	// A second push uploads nothing.
	before := len(b.committed)
	res, err = pushlib.Push(context.Background(), pushlib.Job{Backend: b, Store: fs, Roots: []pushlib.Root{{Path: paths["app"]}}})
	if err != nil || len(res.Pushed) != 0 || len(b.committed) != before {
		t.Fatalf("second push: %v, pushed %d", err, len(res.Pushed))
	}
}

func TestPushFailurePropagatesToDependents(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	fb := newFakeBackend()
	fb.failUp[paths["zlib"]] = -1
	fb.permanent = true
	b := pinningBackend{fb}
	rec := &eventstest.Recorder{}
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, Target: &target.Target{Jobs: 2}, Events: rec, RetryDelay: time.Millisecond,
		Roots: []pushlib.Root{
			{Path: paths["app"], Pin: &backend.Pin{Name: "app-pin"}},
			{Path: paths["tool"], Pin: &backend.Pin{Name: "tool-pin"}},
		},
	})
	if !errors.Is(err, pushlib.ErrPushFailed) || !errors.Is(err, backend.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	if fb.uploads[paths["zlib"]] != 1 {
		t.Errorf("a permanent failure was retried: %d uploads", fb.uploads[paths["zlib"]])
	}
	for _, n := range []string{"zlib", "ssl", "curl", "app"} {
		if fb.present[paths[n]] {
			t.Errorf("%s was published although its closure is incomplete", n)
		}
	}
	if !fb.present[paths["libc"]] || !fb.present[paths["tool"]] {
		t.Error("independent paths must still be pushed")
	}
	if len(fb.pins) != 1 || fb.pins[0].Name != "tool-pin" || fb.pins[0].StorePath != paths["tool"] {
		t.Errorf("pins = %+v; want only tool-pin", fb.pins)
	}
	if len(res.Confirmed) != 1 || res.Confirmed[0] != paths["tool"] {
		t.Errorf("confirmed = %v", res.Confirmed)
	}
	if len(rec.OfKind(events.Warning)) != 1 {
		t.Errorf("want one warning about the skipped pin, got %+v", rec.OfKind(events.Warning))
	}
}

func TestPushRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := newFakeBackend()
	b.failUp[paths["ssl"]] = 2
	rec := &eventstest.Recorder{}
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, Events: rec, RetryDelay: time.Millisecond,
		Roots: []pushlib.Root{{Path: paths["app"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.uploads[paths["ssl"]] != 3 || len(res.Pushed) != 5 {
		t.Errorf("uploads of ssl = %d, pushed %d", b.uploads[paths["ssl"]], len(res.Pushed))
	}
	if got := len(rec.OfKind(events.Retry)); got != 2 {
		t.Errorf("retry events = %d, want 2", got)
	}
}

func TestPushGivesUpAfterRetries(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := newFakeBackend()
	b.failUp[paths["tool"]] = -1
	_, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, RetryDelay: time.Millisecond, PathRetries: 2,
		Roots: []pushlib.Root{{Path: paths["tool"]}},
	})
	if !errors.Is(err, pushlib.ErrPushFailed) || b.uploads[paths["tool"]] != 3 {
		t.Fatalf("err %v after %d uploads", err, b.uploads[paths["tool"]])
	}
}

func TestPushDryRunUploadsNothing(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := newFakeBackend()
	rec := &eventstest.Recorder{}
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, DryRun: true, Events: rec, Roots: []pushlib.Root{{Path: paths["curl"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.uploads) != 0 || len(res.Missing) != 4 || len(rec.OfKind(events.WouldPush)) != 4 {
		t.Errorf("uploads %v missing %d", b.uploads, len(res.Missing))
	}
	// References come before referrers in the plan.
	if res.Missing[0].Path != paths["libc"] || res.Missing[3].Path != paths["curl"] {
		t.Errorf("order = %+v", res.Missing)
	}
}

func TestPushCorruptPathFailsLoudly(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	fs.infos[paths["zlib"]].NarHash.Digest()[0] ^= 0xff
	b := newFakeBackend()
	_, err := pushlib.Push(context.Background(), pushlib.Job{Backend: b, Store: fs, RetryDelay: time.Millisecond,
		Roots: []pushlib.Root{{Path: paths["ssl"]}}})
	if !errors.Is(err, narstream.ErrHashMismatch) {
		t.Fatalf("err = %v", err)
	}
	if b.present[paths["zlib"]] || b.present[paths["ssl"]] || b.uploads[paths["zlib"]] != 1 {
		t.Errorf("corrupt path or its dependents were published, or retried: %v", b.uploads)
	}
}

func TestPushInvalidRoot(t *testing.T) {
	t.Parallel()
	fs, _ := newFakeStore(t, graph)
	_, err := pushlib.Push(context.Background(), pushlib.Job{Backend: newFakeBackend(), Store: fs,
		Roots: []pushlib.Root{{Path: "/nix/store/00000000000000000000000000000000-gone"}}})
	if !errors.Is(err, store.ErrNotInStore) {
		t.Fatalf("err = %v", err)
	}
}

// blockingBackend's uploads hang until the push is stopped, like a cache
// on a dead network.
type blockingBackend struct {
	*fakeBackend
	started chan struct{}
	once    sync.Once
}

func (b *blockingBackend) Upload(ctx context.Context, _ *store.PathInfo, _ narstream.Compression, _ backend.StreamFunc) (backend.Pending, error) {
	b.once.Do(func() { close(b.started) })
	<-ctx.Done()
	return nil, fmt.Errorf("uploading: %w", ctx.Err())
}

// TestPushStoppedIsNotAFailurePerPath: an interrupted push reports no
// "context canceled" failure for each path; the summary counts them as
// stopped and Push returns the cancellation.
func TestPushStoppedIsNotAFailurePerPath(t *testing.T) {
	t.Parallel()
	st, paths := newFakeStore(t, graph)
	b := &blockingBackend{fakeBackend: newFakeBackend(), started: make(chan struct{})}
	rec := &eventstest.Recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-b.started; cancel() }()
	_, err := pushlib.Push(ctx, pushlib.Job{Backend: b, Store: st, Events: rec, Target: &target.Target{Jobs: 2},
		Roots: []pushlib.Root{{Path: paths["app"]}, {Path: paths["tool"]}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Push = %v, want the cancellation", err)
	}
	if f := rec.OfKind(events.Failed); len(f) != 0 {
		t.Errorf("%d failed events for a stopped push: %+v", len(f), f)
	}
	sum := rec.OfKind(events.Summary)
	if len(sum) != 1 || sum[0].Stopped != len(graph) || sum[0].Failed != 0 {
		t.Errorf("summary %+v, want %d stopped and none failed", sum, len(graph))
	}
}

// refusingPins is a backend whose pins all fail.
type refusingPins struct{ *fakeBackend }

func (refusingPins) CreatePin(context.Context, backend.Pin) error {
	return fmt.Errorf("%w: pin refused", backend.ErrRejected)
}

// TestOnlyPinFails: when every path is pushed and only a pin fails, the
// error counts the pin, not "1 of 0 paths".
func TestOnlyPinFails(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := refusingPins{newFakeBackend()}
	_, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs,
		Roots: []pushlib.Root{{Path: paths["tool"], Pin: &backend.Pin{Name: "tool"}}},
	})
	if !errors.Is(err, pushlib.ErrPushFailed) {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "but 1 pin could not be set") || strings.Contains(msg, "paths could not be pushed") {
		t.Errorf("err = %q", msg)
	}
	if len(b.committed) != 2 {
		t.Errorf("committed %v, want tool and libc", b.committed)
	}
}

// validityStore counts the validity queries a push makes.
type validityStore struct {
	*fakeStore
	queries int
}

func (v *validityStore) Invalid(_ context.Context, paths []string) ([]string, error) {
	v.queries++
	var out []string
	for _, p := range paths {
		if _, ok := v.infos[p]; !ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestSkipInvalidOnlyWhenNeeded: a push that skips invalid roots asks
// which are invalid only when the closure query says some are; with one,
// it warns, drops it and pushes the rest.
func TestSkipInvalidOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	gone := "/nix/store/00000000000000000000000000000000-gone"
	for _, tc := range []struct {
		name        string
		roots       []string
		wantQueries int
		wantWarn    bool
	}{
		{"all valid", []string{paths["tool"]}, 0, false},
		{"one invalid", []string{gone, paths["tool"]}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := &validityStore{fakeStore: fs}
			rec := &eventstest.Recorder{}
			var roots []pushlib.Root
			for _, r := range tc.roots {
				roots = append(roots, pushlib.Root{Path: r})
			}
			res, err := pushlib.Push(context.Background(), pushlib.Job{
				Backend: newFakeBackend(), Store: vs, Events: rec, SkipInvalid: true, Roots: roots,
			})
			if err != nil {
				t.Fatal(err)
			}
			if vs.queries != tc.wantQueries {
				t.Errorf("%d validity queries, want %d", vs.queries, tc.wantQueries)
			}
			if warned := len(rec.OfKind(events.Warning)) > 0; warned != tc.wantWarn {
				t.Errorf("warned %v, want %v", warned, tc.wantWarn)
			}
			if got := pushedNames(paths, res); strings.Join(got, ",") != "libc,tool" && strings.Join(got, ",") != "tool,libc" {
				t.Errorf("pushed %v", got)
			}
		})
	}
}

// unwritableBackend is a cache that cannot take a byte (a full disk).
type unwritableBackend struct{ *fakeBackend }

func (unwritableBackend) Upload(context.Context, *store.PathInfo, narstream.Compression, backend.StreamFunc) (backend.Pending, error) {
	return nil, fmt.Errorf("%w: simulated full disk", backend.ErrUnwritable)
}

// slowFailures is a sink that takes its time over a failure, as a
// terminal does over the error line: the window in which other workers
// could start paths.
type slowFailures struct{ *eventstest.Recorder }

func (s slowFailures) Emit(e events.Event) {
	s.Recorder.Emit(e)
	if e.Kind == events.Failed {
		time.Sleep(2 * time.Millisecond)
	}
}

// TestNoStartAfterAFatalError: once a path fails in a way that stops the
// push, no other path is said to start after that error (it would print
// "Pushing …" lines for paths never pushed).
func TestNoStartAfterAFatalError(t *testing.T) {
	t.Parallel()
	refs := map[string][]string{}
	for i := range 60 {
		refs[fmt.Sprintf("leaf%02d", i)] = nil
	}
	st, paths := newFakeStore(t, refs)
	var roots []pushlib.Root
	for _, p := range paths {
		roots = append(roots, pushlib.Root{Path: p})
	}
	for round := range 10 {
		rec := &eventstest.Recorder{}
		_, err := pushlib.Push(context.Background(), pushlib.Job{Backend: unwritableBackend{newFakeBackend()}, Store: st, Events: slowFailures{rec},
			Target: &target.Target{Jobs: 8}, Roots: roots})
		if !errors.Is(err, backend.ErrUnwritable) {
			t.Fatalf("Push = %v, want ErrUnwritable", err)
		}
		failed := false
		for _, e := range rec.Events() {
			switch {
			case e.Kind == events.Failed:
				failed = true
			case e.Kind == events.Start && failed:
				t.Fatalf("round %d: %s started after a path failed for good", round, e.Path)
			}
		}
	}
}

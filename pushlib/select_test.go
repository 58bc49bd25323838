package pushlib_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/events/eventstest"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// names maps store paths back to the graph's names, sorted.
func names(paths map[string]string, ps []string) []string {
	back := map[string]string{}
	for n, p := range paths {
		back[p] = n
	}
	var out []string
	for _, p := range ps {
		out = append(out, back[p])
	}
	sort.Strings(out)
	return out
}

func pushedNames(paths map[string]string, res *pushlib.Result) []string {
	var ps []string
	for _, p := range res.Pushed {
		ps = append(ps, p.Path)
	}
	return names(paths, ps)
}

// TestExcludePrune: excluding zlib prunes everything that needs it (ssl,
// curl, app) and keeps what does not (libc, tool); app is not pushed, not
// confirmed and not pinned, and the report says why.
func TestExcludePrune(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := pinningBackend{newFakeBackend()}
	rec := &eventstest.Recorder{}
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, Events: rec,
		Select: selection.Rules{Names: []string{"zli?"}}.Effective("cachix"),
		Roots:  []pushlib.Root{{Path: paths["app"], Pin: &backend.Pin{Name: "app"}}, {Path: paths["tool"], Pin: &backend.Pin{Name: "tool"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pushedNames(paths, res); strings.Join(got, ",") != "libc,tool" {
		t.Errorf("pushed %v", got)
	}
	if len(res.Excluded) != 1 || res.Excluded[0].Path != paths["zlib"] || res.Excluded[0].Rule != `name "zli?"` || res.Excluded[0].Upstream {
		t.Errorf("excluded = %+v", res.Excluded)
	}
	var pruned []string
	for _, p := range res.Pruned {
		pruned = append(pruned, p.Path)
		if p.Excluded != paths["zlib"] {
			t.Errorf("%s pruned because of %s", p.Path, p.Excluded)
		}
	}
	if got := names(paths, pruned); strings.Join(got, ",") != "app,curl,ssl" {
		t.Errorf("pruned %v", got)
	}
	if len(res.NotPushed) != 1 || res.NotPushed[0].Path != paths["app"] || !strings.Contains(res.NotPushed[0].Reason, paths["zlib"]) ||
		!strings.Contains(res.NotPushed[0].Reason, `name "zli?"`) {
		t.Errorf("not pushed = %+v", res.NotPushed)
	}
	if len(res.Confirmed) != 1 || res.Confirmed[0] != paths["tool"] {
		t.Errorf("confirmed = %v", res.Confirmed)
	}
	if len(b.pins) != 1 || b.pins[0].Name != "tool" {
		t.Errorf("pins = %+v", b.pins)
	}
	if len(res.LeftToUpstream) != 0 {
		t.Errorf("prune leaves nothing to an upstream: %v", res.LeftToUpstream)
	}
	if ev := rec.OfKind(events.NotPushed); len(ev) != 1 || ev[0].Path != paths["app"] {
		t.Errorf("not-pushed events = %+v", ev)
	}
	if ev := rec.OfKind(events.Plan); len(ev) != 1 || ev[0].Excluded != 1 || ev[0].Pruned != 3 || !strings.Contains(ev[0].Selection, "1 excluded") {
		t.Errorf("plan event = %+v", ev)
	}
	// The cache holds no path whose references it lacks.
	for _, p := range b.committed {
		for _, r := range fs.infos[p].References {
			if !b.present[r] {
				t.Errorf("%s is in the cache without its reference %s", p, r)
			}
		}
	}
}

// TestExcludeUpstream: the same rule with upstream semantics pushes the
// dependents and names what is left to the upstream cache; every root is
// confirmed and pinned.
func TestExcludeUpstream(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	fb := newFakeBackend()
	fb.upstream = map[string]bool{paths["zlib"]: true}
	b := pinningBackend{fb}
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs,
		Select: selection.Rules{Regex: []string{`-zlib$`}, Mode: selection.Upstream}.Effective("cachix"),
		Roots:  []pushlib.Root{{Path: paths["app"], Pin: &backend.Pin{Name: "app"}}, {Path: paths["tool"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pushedNames(paths, res); strings.Join(got, ",") != "app,curl,libc,ssl,tool" {
		t.Errorf("pushed %v", got)
	}
	if len(res.Excluded) != 1 || !res.Excluded[0].Upstream || len(res.Pruned) != 0 || len(res.NotPushed) != 0 {
		t.Errorf("excluded %+v, pruned %+v, not pushed %+v", res.Excluded, res.Pruned, res.NotPushed)
	}
	if len(res.LeftToUpstream) != 1 || res.LeftToUpstream[0] != paths["zlib"] {
		t.Errorf("left to upstream = %v", res.LeftToUpstream)
	}
	if len(res.Confirmed) != 2 || len(fb.pins) != 1 {
		t.Errorf("confirmed %v, pins %+v", res.Confirmed, fb.pins)
	}
	if fb.uploads[paths["zlib"]] != 0 {
		t.Error("the excluded path was uploaded")
	}
}

// TestUpstreamFilter: paths signed by the upstream key count as present
// upstream; the rules never see them; a signature by another key changes
// nothing; a root that upstream has is not pushed (and says so).
func TestUpstreamFilter(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	fs.infos[paths["libc"]].Signatures = []string{"cache.nixos.org-1:c2lnbmF0dXJl"}
	fs.infos[paths["zlib"]].Signatures = []string{"other-1:c2ln", "cache.nixos.org-1:c2lnbmF0dXJl"}
	fs.infos[paths["tool"]].Signatures = []string{"someone-else-1:c2ln"}
	fb := newFakeBackend()
	fb.upstream = map[string]bool{paths["libc"]: true, paths["zlib"]: true}
	b := fb
	// zlib also matches a prune rule: the filter wins (upstream has it).
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs, Select: selection.Rules{Names: []string{"zlib"}}.Effective("file"),
		Roots: []pushlib.Root{{Path: paths["app"]}, {Path: paths["tool"]}, {Path: paths["libc"]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pushedNames(paths, res); strings.Join(got, ",") != "app,curl,ssl,tool" {
		t.Errorf("pushed %v", got)
	}
	var up []string
	for _, e := range res.Excluded {
		if !e.Upstream || !strings.Contains(e.Rule, "cache.nixos.org-1") {
			t.Errorf("excluded %+v", e)
		}
		up = append(up, e.Path)
	}
	if got := names(paths, up); strings.Join(got, ",") != "libc,zlib" {
		t.Errorf("filtered %v", got)
	}
	if got := names(paths, res.LeftToUpstream); strings.Join(got, ",") != "libc,zlib" {
		t.Errorf("left to upstream %v", got)
	}
	if len(res.NotPushed) != 1 || res.NotPushed[0].Path != paths["libc"] || !strings.Contains(res.NotPushed[0].Reason, "upstream") {
		t.Errorf("not pushed = %+v", res.NotPushed)
	}

	// Without the filter everything goes; the filter is off for Cachix by default.
	for _, sel := range []selection.Rules{{UpstreamFilter: new(bool)}, {}} {
		fb2 := newFakeBackend()
		scheme := "file"
		if sel.UpstreamFilter == nil {
			scheme = "cachix"
		}
		res, err := pushlib.Push(context.Background(), pushlib.Job{Backend: fb2, Store: fs, Select: sel.Effective(scheme),
			Roots: []pushlib.Root{{Path: paths["app"]}, {Path: paths["tool"]}}})
		if err != nil || len(res.Pushed) != 6 || len(res.Excluded) != 0 {
			t.Errorf("%s, filter off: pushed %d, excluded %d, %v", scheme, len(res.Pushed), len(res.Excluded), err)
		}
	}
}

// TestExcludedPresentPathIsNotExcluded: rules apply to what the cache
// lacks; a matching path the cache has changes nothing.
func TestExcludedPresentPathIsNotExcluded(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	fb := newFakeBackend()
	fb.present[paths["zlib"]] = true
	fb.present[paths["libc"]] = true
	res, err := pushlib.Push(context.Background(), pushlib.Job{Backend: fb, Store: fs,
		Select: selection.Rules{Names: []string{"zlib", "libc"}}.Effective("file"),
		Roots:  []pushlib.Root{{Path: paths["tool"]}}})
	if err != nil || len(res.Excluded) != 0 || len(res.NotPushed) != 0 || len(res.Confirmed) != 1 {
		t.Fatalf("res %+v, %v", res, err)
	}
	// A cap excludes every missing path above it, here all of them (app, curl, ssl).
	res, err = pushlib.Push(context.Background(), pushlib.Job{Backend: fb, Store: fs,
		Select: selection.Rules{MaxNarSize: 1}.Effective("file"), Roots: []pushlib.Root{{Path: paths["app"]}}})
	if err != nil || len(res.Pushed) != 0 || len(res.Excluded) != 3 || len(res.NotPushed) != 1 ||
		!strings.Contains(res.NotPushed[0].Reason, "max-nar-size 1 B") {
		t.Fatalf("cap: pushed %d excluded %+v not pushed %+v, %v", len(res.Pushed), res.Excluded, res.NotPushed, err)
	}
}

// buildStore adds build closures to the fake store: "app" is built from
// curl and tool (its inputs), and "gone" is an input that is not realised.
type buildStore struct {
	*fakeStore
	closures map[string]*store.BuildClosure
	invalid  map[string]bool
}

func (b buildStore) BuildClosures(_ context.Context, roots []string) (map[string]*store.BuildClosure, error) {
	out := map[string]*store.BuildClosure{}
	for _, r := range roots {
		out[r] = b.closures[r]
	}
	return out, nil
}

func (b buildStore) Invalid(_ context.Context, paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if b.invalid[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

// TestBuildClosureAndOptionalRoots: a build root pushes its seeds'
// closures, counts what is not realised, and is confirmed; an optional
// root that is not valid is skipped without failing the push.
func TestBuildClosureAndOptionalRoots(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	drv := "/nix/store/00000000000000000000000000000099-app.drv"
	bs := buildStore{fs, map[string]*store.BuildClosure{
		drv: {Derivation: drv, Seeds: []string{paths["curl"], paths["tool"]}, NotRealised: []string{"/nix/store/x-gone", drv + "^out"}},
	}, map[string]bool{"/nix/store/00000000000000000000000000000098-dep": true}}
	fb := pinningBackend{newFakeBackend()}
	rec := &eventstest.Recorder{}
	res, err := pushlib.Push(context.Background(), pushlib.Job{Backend: fb, Store: bs, Events: rec,
		Roots: []pushlib.Root{{Path: drv, Closure: selection.Build, Pin: &backend.Pin{Name: "drv"}},
			{Path: "/nix/store/00000000000000000000000000000098-dep", IfValid: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := pushedNames(paths, res); strings.Join(got, ",") != "curl,libc,ssl,tool,zlib" {
		t.Errorf("pushed %v", got)
	}
	if len(res.Skipped) != 3 {
		t.Errorf("skipped = %v", res.Skipped)
	}
	if len(res.Confirmed) != 1 || res.Confirmed[0] != drv {
		t.Errorf("confirmed = %v", res.Confirmed)
	}
	if len(res.NotPushed) != 1 || !strings.Contains(res.NotPushed[0].Reason, "skipped") {
		t.Errorf("not pushed = %+v", res.NotPushed)
	}
	if len(fb.pins) != 0 || len(rec.OfKind(events.Warning)) == 0 {
		t.Errorf("a derivation was pinned: %+v", fb.pins)
	}
}

// TestExcludedRootPresentIsNotPinned: a pinned root that a rule excludes
// and that the cache reports present (Cachix does so for what
// cache.nixos.org has) is not pinned and is reported as not pushed; the
// root beside it is pinned as usual.
func TestExcludedRootPresentIsNotPinned(t *testing.T) {
	t.Parallel()
	fs, paths := newFakeStore(t, graph)
	b := pinningBackend{newFakeBackend()}
	b.present[paths["zlib"]], b.present[paths["libc"]] = true, true
	res, err := pushlib.Push(context.Background(), pushlib.Job{
		Backend: b, Store: fs,
		Select: selection.Rules{Names: []string{"zlib"}, Mode: selection.Upstream}.Effective("cachix"),
		Roots:  []pushlib.Root{{Path: paths["zlib"], Pin: &backend.Pin{Name: "zlib"}}, {Path: paths["tool"], Pin: &backend.Pin{Name: "tool"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.pins) != 1 || b.pins[0].Name != "tool" {
		t.Errorf("pins = %+v, want tool only", b.pins)
	}
	if len(res.NotPushed) != 1 || res.NotPushed[0].Path != paths["zlib"] || !strings.Contains(res.NotPushed[0].Reason, `excluded by name "zlib"`) {
		t.Errorf("not pushed = %+v", res.NotPushed)
	}
	if got := pushedNames(paths, res); strings.Join(got, ",") != "tool" {
		t.Errorf("pushed %v", got)
	}
}

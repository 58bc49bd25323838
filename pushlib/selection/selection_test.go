package selection_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{"512": 512, "4K": 4096, "100M": 100 << 20, "1G": 1 << 30, "2t": 2 << 40, " 3k ": 3072} {
		if got, err := selection.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5G", "1X", "G", "99999999999T", "1 G"} {
		if _, err := selection.ParseSize(in); !errors.Is(err, fault.ErrBadInput) || !strings.Contains(err.Error(), "not a size") {
			t.Errorf("ParseSize(%q): %v, want a bad-input error", in, err)
		}
	}
}

func TestMergeAndEffective(t *testing.T) {
	t.Parallel()
	off := false
	manifest := selection.Rules{Names: []string{"*-doc"}, MaxNarSize: 100, Mode: selection.Upstream, UpstreamKeys: []string{"company-1"}}
	flags := selection.Rules{Names: []string{"*-doc", "source"}, Regex: []string{"x$"}, MaxNarSize: 50}
	r := selection.Merge(flags, manifest)
	if strings.Join(r.Names, ",") != "*-doc,source" || len(r.Regex) != 1 || r.MaxNarSize != 50 || r.Mode != selection.Upstream ||
		strings.Join(r.UpstreamKeys, ",") != "company-1" {
		t.Errorf("merged = %+v", r)
	}
	if r := selection.Merge(selection.Rules{Mode: selection.Prune, UpstreamFilter: &off}, manifest); r.Mode != selection.Prune || *r.UpstreamFilter || r.MaxNarSize != 100 {
		t.Errorf("the command line's mode and filter must win: %+v", r)
	}

	// Plain caches filter by default, with cache.nixos.org's key; Cachix only when asked.
	for scheme, want := range map[string]bool{"file": true, "s3": true, "cachix": false} {
		e := selection.Rules{}.Effective(scheme)
		if e.Filtering() != want || e.Mode != selection.Prune {
			t.Errorf("%s: filtering %v, mode %q", scheme, e.Filtering(), e.Mode)
		}
		if want && (len(e.UpstreamKeys) != 1 || e.UpstreamKeys[0] != selection.DefaultUpstreamKey) {
			t.Errorf("%s: keys %v", scheme, e.UpstreamKeys)
		}
	}
	if e := (selection.Rules{UpstreamKeys: []string{"company-1"}}).Effective("cachix"); !e.Filtering() || e.UpstreamKeys[0] != "company-1" || len(e.UpstreamKeys) != 1 {
		t.Errorf("keys given for Cachix turn the filter on, and replace the default: %+v", e)
	}
	if e := (selection.Rules{UpstreamFilter: &off}).Effective("file"); e.Filtering() || e.UpstreamKeys != nil {
		t.Errorf("filter off: %+v", e)
	}

	// Fingerprints: none without rules or filter; equal for equal rules in any order.
	if fp := (selection.Rules{}).Effective("cachix").Fingerprint(); fp != "" {
		t.Errorf("no rules, no filter: fingerprint %q", fp)
	}
	a := selection.Rules{Names: []string{"a", "b"}}.Effective("file").Fingerprint()
	b := selection.Rules{Names: []string{"b", "a"}}.Effective("file").Fingerprint()
	c := selection.Rules{Names: []string{"a"}}.Effective("file").Fingerprint()
	if a == "" || a != b || a == c {
		t.Errorf("fingerprints %q %q %q", a, b, c)
	}
}

func TestMatcher(t *testing.T) {
	t.Parallel()
	r := selection.Rules{Names: []string{"*-doc"}, Regex: []string{`-source$`}, MaxNarSize: 1 << 20, UpstreamKeys: []string{"up-1"}}.Effective("file")
	m, err := r.Compile()
	if err != nil {
		t.Fatal(err)
	}
	pi := func(name string, size uint64, sigs ...string) *store.PathInfo {
		return &store.PathInfo{Path: "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-" + name, NarSize: size, Signatures: sigs}
	}
	for _, tt := range []struct {
		info *store.PathInfo
		want string
	}{
		{pi("hello-2.12-doc", 10), `name "*-doc"`},
		{pi("hello-2.12", 10), ""},
		{pi("doc", 10), ""},
		{pi("abc-source", 10), `regex "-source$"`},
		{pi("big", 2<<20), "max-nar-size 1.0 MiB (its NAR is 2.0 MiB)"},
		{pi("edge", 1<<20), ""},
	} {
		if got := m.Exclude(tt.info); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.info.Path, got, tt.want)
		}
	}
	if k, ok := m.Upstream(pi("x", 1, "up-1:sig", "other-1:sig")); !ok || k != "up-1" {
		t.Errorf("upstream: %q %v", k, ok)
	}
	if _, ok := m.Upstream(pi("x", 1, "other-1:sig")); ok {
		t.Error("a signature by another key counts as upstream")
	}
	if _, err := (selection.Rules{Regex: []string{"("}}).Compile(); !errors.Is(err, fault.ErrBadInput) {
		t.Errorf("bad regex: %v", err)
	}
	if _, err := selection.ParseMode("skip"); err == nil {
		t.Error("ParseMode accepted skip")
	}
	if c, err := selection.ParseClosure(""); err != nil || c != selection.Runtime {
		t.Errorf("ParseClosure(\"\") = %q, %v", c, err)
	}
}

package omci_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/omci"
)

// TestSelect covers pin naming, filters, sub-flake and system choice, and system resolution.
func TestSelect(t *testing.T) {
	t.Parallel()
	item := func(sf, sys, name, sp, pin string) omci.Item {
		return omci.Item{Subflake: sf, System: sys, Name: name, StorePath: sp, PinName: pin}
	}
	const lx, dw = "x86_64-linux", "aarch64-darwin"
	tests := []struct {
		name    string
		file    string
		sel     omci.Selection
		want    []omci.Item
		wantErr error
		errHas  string
	}{
		{
			name: "cachix-push equivalent",
			file: "one-system.json",
			sel:  omci.Selection{Subflakes: []string{"ROOT"}, Prefix: "main"},
			want: []omci.Item{
				item("ROOT", lx, "bar", barLinux, "main-x86_64-linux-bar"),
				item("ROOT", lx, "foo", fooLinux, "main-x86_64-linux-foo"),
				item("ROOT", lx, "ghc-shell-for-packages-0", shellLinux, "main-x86_64-linux-ghc-shell-for-packages-0"),
			},
		},
		{
			name: "empty prefix has no leading dash",
			file: "one-system.json",
			sel:  omci.Selection{Include: []string{"foo"}},
			want: []omci.Item{item("ROOT", lx, "foo", fooLinux, "x86_64-linux-foo")},
		},
		{
			name: "include globs",
			file: "one-system.json",
			sel:  omci.Selection{Prefix: "p", Include: []string{"b*", "ghc-*"}},
			want: []omci.Item{
				item("ROOT", lx, "bar", barLinux, "p-x86_64-linux-bar"),
				item("ROOT", lx, "ghc-shell-for-packages-0", shellLinux, "p-x86_64-linux-ghc-shell-for-packages-0"),
			},
		},
		{
			name: "exclude wins over include",
			file: "one-system.json",
			sel:  omci.Selection{Prefix: "p", Include: []string{"*"}, Exclude: []string{"*-shell-*", "bar"}},
			want: []omci.Item{item("ROOT", lx, "foo", fooLinux, "p-x86_64-linux-foo")},
		},
		{
			name: "include matching nothing selects nothing",
			file: "one-system.json",
			sel:  omci.Selection{Include: []string{"nope"}},
			want: nil,
		},
		{
			name: "all sub-flakes; identical pin from two sub-flakes listed once",
			file: "several-subflakes.json",
			sel:  omci.Selection{Prefix: "main"},
			want: []omci.Item{
				item("ROOT", lx, "nix-shell", nixShell, "main-x86_64-linux-nix-shell"),
				item("ROOT", lx, "services-flake-docs", docs, "main-x86_64-linux-services-flake-docs"),
				item("simple-example", lx, "default", defaultOut, "main-x86_64-linux-default"),
				item("simple-example", lx, "default-test", defaultTest, "main-x86_64-linux-default-test"),
			},
		},
		{
			name: "one sub-flake",
			file: "several-subflakes.json",
			sel:  omci.Selection{Subflakes: []string{"simple-example"}, Prefix: "main", Exclude: []string{"*-test"}},
			want: []omci.Item{
				item("simple-example", lx, "default", defaultOut, "main-x86_64-linux-default"),
				item("simple-example", lx, "nix-shell", nixShell, "main-x86_64-linux-nix-shell"),
			},
		},
		{
			name:    "unknown sub-flake lists the available ones",
			file:    "several-subflakes.json",
			sel:     omci.Selection{Subflakes: []string{"ROOT", "nope"}},
			wantErr: omci.ErrBadSelection,
			errHas:  `several-subflakes.json has no sub-flake "nope" (it has: ROOT, doc, simple-example)`,
		},
		{
			name:    "sub-flake without build results",
			file:    "several-subflakes.json",
			sel:     omci.Selection{Subflakes: []string{"doc"}},
			wantErr: omci.ErrBadSelection,
			errHas:  `result.doc.build is null: the build step did not run for sub-flake "doc"`,
		},
		{
			name: "per-system layout: both systems",
			file: "per-system.json",
			sel:  omci.Selection{Prefix: "main", Exclude: []string{"linux-tool"}},
			want: []omci.Item{
				item("ROOT", dw, "bar", barDarwin, "main-aarch64-darwin-bar"),
				item("ROOT", dw, "foo", fooDarwin, "main-aarch64-darwin-foo"),
				item("ROOT", lx, "bar", barLinux, "main-x86_64-linux-bar"),
				item("ROOT", lx, "foo", fooLinux, "main-x86_64-linux-foo"),
			},
		},
		{
			name: "per-system layout: system filter",
			file: "per-system.json",
			sel:  omci.Selection{Prefix: "main", Systems: []string{lx}, Include: []string{"foo", "linux-*"}},
			want: []omci.Item{
				item("ROOT", lx, "foo", fooLinux, "main-x86_64-linux-foo"),
				item("ROOT", lx, "linux-tool", linuxTool, "main-x86_64-linux-linux-tool"),
			},
		},
		{
			name:    "unknown system",
			file:    "per-system.json",
			sel:     omci.Selection{Systems: []string{"riscv64-linux"}},
			wantErr: omci.ErrBadSelection,
			errHas:  `per-system.json has no results for system "riscv64-linux" (it has: aarch64-darwin, x86_64-linux)`,
		},
		{
			name:    "flat byName with several systems needs SystemOf",
			file:    "several-systems.json",
			sel:     omci.Selection{Prefix: "main"},
			wantErr: omci.ErrUnknownSystem,
			errHas:  "the results cover 2 systems (x86_64-linux, aarch64-darwin) but byName does not say which one built bar, foo, linux-tool",
		},
		{
			name:    "SystemOf must cover every selected output",
			file:    "several-systems.json",
			sel:     omci.Selection{SystemOf: map[string]string{fooDarwin: dw}},
			wantErr: omci.ErrUnknownSystem,
			errHas:  "which one built bar, linux-tool;",
		},
		{
			name: "SystemOf resolves flat byName; filters apply before resolving",
			file: "several-systems.json",
			sel: omci.Selection{Prefix: "main", Exclude: []string{"bar"},
				SystemOf: map[string]string{fooDarwin: dw, linuxTool: lx}},
			want: []omci.Item{
				item("ROOT", dw, "foo", fooDarwin, "main-aarch64-darwin-foo"),
				item("ROOT", lx, "linux-tool", linuxTool, "main-x86_64-linux-linux-tool"),
			},
		},
		{
			name: "SystemOf then system filter",
			file: "several-systems.json",
			sel: omci.Selection{Systems: []string{dw},
				SystemOf: map[string]string{fooDarwin: dw, barDarwin: dw, linuxTool: lx}},
			want: []omci.Item{
				item("ROOT", dw, "bar", barDarwin, "aarch64-darwin-bar"),
				item("ROOT", dw, "foo", fooDarwin, "aarch64-darwin-foo"),
			},
		},
		{
			name:    "SystemOf naming a system outside the file",
			file:    "several-systems.json",
			sel:     omci.Selection{Include: []string{"foo"}, SystemOf: map[string]string{fooDarwin: "x86_64-darwin"}},
			wantErr: omci.ErrBadSelection,
			errHas:  "foo (" + fooDarwin + ") was built for x86_64-darwin, which is not among the file's systems (x86_64-linux, aarch64-darwin)",
		},
		{
			name:    "bad pattern",
			file:    "one-system.json",
			sel:     omci.Selection{Exclude: []string{"[oops"}},
			wantErr: omci.ErrBadSelection,
			errHas:  `name pattern "[oops": syntax error in pattern`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := parseFile(t, tt.file)
			got, err := r.Select(tt.sel)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestSelectDuplicatePin checks one pin name for two paths is refused.
func TestSelectDuplicatePin(t *testing.T) {
	t.Parallel()
	// Two sub-flakes build "foo" differently: one pin name, two paths.
	const doc = `{"systems":["x86_64-linux"],"result":{
		"a":{"build":{"byName":{"foo":"` + fooLinux + `"}}},
		"b":{"build":{"byName":{"foo":"` + fooDarwin + `"}}}}}`
	r, err := omci.Parse(strings.NewReader(doc), "om.json")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Select(omci.Selection{Prefix: "main"})
	if !errors.Is(err, omci.ErrBadSelection) {
		t.Fatalf("err = %v, want ErrBadSelection", err)
	}
	want := `om.json: pin name "main-x86_64-linux-foo" would point to both ` + fooLinux + ` (sub-flake a, foo) and ` + fooDarwin + ` (sub-flake b, foo)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error\n%s\ndoes not contain\n%s", err, want)
	}
	// Selecting one sub-flake avoids the clash.
	items, err := r.Select(omci.Selection{Prefix: "main", Subflakes: []string{"b"}})
	if err != nil || len(items) != 1 || items[0].StorePath != fooDarwin {
		t.Errorf("Select(b) = %+v, %v", items, err)
	}
}

// TestSelectDeterministic checks that map iteration order never leaks
// into the result.
func TestSelectDeterministic(t *testing.T) {
	t.Parallel()
	first, err := parseFile(t, "per-system.json").Select(omci.Selection{Prefix: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := parseFile(t, "per-system.json").Select(omci.Selection{Prefix: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("run %d differs:\n%+v\n%+v", i, first, again)
		}
	}
}

// TestPinName pins down the cachix-push naming scheme.
func TestPinName(t *testing.T) {
	t.Parallel()
	tests := []struct{ prefix, system, name, want string }{
		{"main", "x86_64-linux", "omnix-cli", "main-x86_64-linux-omnix-cli"},
		{"", "aarch64-darwin", "hello", "aarch64-darwin-hello"},
		{"feature/x", "x86_64-linux", "a.b", "feature/x-x86_64-linux-a.b"},
	}
	for _, tt := range tests {
		if got := omci.PinName(tt.prefix, tt.system, tt.name); got != tt.want {
			t.Errorf("PinName(%q, %q, %q) = %q, want %q", tt.prefix, tt.system, tt.name, got, tt.want)
		}
	}
}

package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// The fixtures describe the same two store paths in every shape of
// `nix path-info --json`: nix-2.8-array.json was produced by Nix 2.8 on this
// machine; the others were converted from it following the Nix and Lix
// release notes (object keyed by path in 2.19; --json-format 1 and 2 in 2.33).
const (
	top = "/nix/store/dd6q030zgh4g66z31amskd61262bgyn9-top"
	dep = "/nix/store/vd8qd9khb0bf2fk5cqgizp2xicy23dk0-dep"
)

func TestParsePathInfoJSONShapes(t *testing.T) {
	t.Parallel()
	depCA := "fixed:r:sha256:1fqn6fqnsxwbgp41gmncba9dj3zid77g61i1qhcr5gzws7r13702"
	tests := []struct {
		file    string
		wantCA  string
		wantSig bool
	}{
		{file: "nix-2.8-array.json"},
		{file: "lix-array.json", wantCA: depCA, wantSig: true},
		{file: "nix-2.19-object.json"},
		{file: "nix-2.33-format1.json"},
		{file: "nix-2.33-format2.json", wantCA: depCA},
		// Written from Nix's store-object-info v3 schema (structured
		// signatures), and from the 2.8 file with "sigs" for "signatures".
		{file: "nix-format3-structured-sigs.json", wantCA: depCA, wantSig: true},
		{file: "sigs-field.json", wantSig: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			infos, err := store.ParsePathInfoJSON(data, "")
			if err != nil {
				t.Fatalf("ParsePathInfoJSON: %v", err)
			}
			if len(infos) != 2 {
				t.Fatalf("got %d entries, want 2 (invalid paths must be dropped): %v", len(infos), keys(infos))
			}
			ti, di := infos[top], infos[dep]
			if ti == nil || di == nil {
				t.Fatalf("missing entries: %v", keys(infos))
			}
			if got := ti.NarHashString(); got != "sha256:1mfznks07wjwjxph30hf85d6pkiigidlpzwdnj8awa6sh4kd7pa5" {
				t.Errorf("top narHash = %s", got)
			}
			if ti.NarSize != 736 || di.NarSize != 520 {
				t.Errorf("narSize = %d, %d", ti.NarSize, di.NarSize)
			}
			if !reflect.DeepEqual(ti.References, []string{dep}) || !reflect.DeepEqual(di.References, []string{dep}) {
				t.Errorf("references = %v, %v", ti.References, di.References)
			}
			if ti.Deriver != "/nix/store/9aqky8fbhxd5jdg35dmpz3hgp72px64f-top.drv" {
				t.Errorf("deriver = %q", ti.Deriver)
			}
			if di.CA != tt.wantCA {
				t.Errorf("ca = %q, want %q", di.CA, tt.wantCA)
			}
			if got := len(ti.Signatures) > 0; got != tt.wantSig {
				t.Errorf("signatures = %v", ti.Signatures)
			}
			if tt.wantSig {
				if name, ok := ti.SignedBy([]string{"other-1", "cache.example.org-1"}); !ok || name != "cache.example.org-1" {
					t.Errorf("SignedBy: %q %v (signatures %v)", name, ok, ti.Signatures)
				}
				if !strings.HasPrefix(ti.Signatures[0], "cache.example.org-1:AAAA") {
					t.Errorf("signature text form: %q", ti.Signatures[0])
				}
			}
			if _, ok := ti.SignedBy([]string{"cache.example.org"}); ok {
				t.Error("SignedBy matched a key name that is only a prefix")
			}
		})
	}
}

func keys(m map[string]*store.PathInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestParsePathInfoJSONErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"not json", "error: something"},
		{"scalar", "42"},
		{"bad hash", `[{"path":"/nix/store/dd6q030zgh4g66z31amskd61262bgyn9-top","narHash":"sha256-short","narSize":1}]`},
		{"md5 nar hash", `[{"path":"/nix/store/dd6q030zgh4g66z31amskd61262bgyn9-top","narHash":"md5:00000000000000000000000000000000","narSize":1}]`},
		{"no path", `[{"narHash":"sha256-Rd3TJoHaKK6QtI3/S1t8Mc5rWkEOggFvl1zyA/S039U=","narSize":1}]`},
		{"bad ca method", `{"/nix/store/dd6q030zgh4g66z31amskd61262bgyn9-top":{"narHash":"sha256-Rd3TJoHaKK6QtI3/S1t8Mc5rWkEOggFvl1zyA/S039U=","narSize":1,"ca":{"method":"weird","hash":"sha256-Rd3TJoHaKK6QtI3/S1t8Mc5rWkEOggFvl1zyA/S039U="}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := store.ParsePathInfoJSON([]byte(tt.in), ""); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

func TestParseSHA256Encodings(t *testing.T) {
	t.Parallel()
	// SHA-256 of the empty string in every encoding Nix accepts (cachix-protocol.md §10).
	want := "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
	for _, in := range []string{
		"sha256:" + want,
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		"sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	} {
		d, err := nixhash.ParseAny(in, nil)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := (&store.PathInfo{NarHash: d.Hash}).NarHashString(); got != "sha256:"+want {
			t.Errorf("%s → %s", in, got)
		}
	}
}

func TestFingerprintVector(t *testing.T) {
	t.Parallel()
	// cachix-protocol.md §10.
	h, err := nixhash.ParseAny("sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw", nil)
	if err != nil {
		t.Fatal(err)
	}
	pi := &store.PathInfo{
		Path:    "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello",
		NarHash: h.Hash, NarSize: 120,
		References: []string{"/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40", "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello"},
	}
	want := "1;/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello;sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;" +
		"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello,/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"
	if got := pi.Fingerprint(); got != want {
		t.Errorf("fingerprint\n got %s\nwant %s", got, want)
	}
	if got := pi.ReferenceNames(); !reflect.DeepEqual(got, []string{"0123456789abcdfghijklmnpqrsvwxyz-hello", "zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"}) {
		t.Errorf("ReferenceNames = %v", got)
	}
}

func TestTopoSort(t *testing.T) {
	t.Parallel()
	infos := map[string]*store.PathInfo{
		"/s/c": {Path: "/s/c", References: []string{"/s/a", "/s/b", "/s/c"}},
		"/s/b": {Path: "/s/b", References: []string{"/s/a", "/s/outside"}},
		"/s/a": {Path: "/s/a", References: []string{"/s/a"}},
		"/s/d": {Path: "/s/d"},
	}
	got := store.TopoSort(infos)
	pos := map[string]int{}
	for i, p := range got {
		pos[p] = i
	}
	if len(got) != 4 {
		t.Fatalf("got %v", got)
	}
	for p, pi := range infos {
		for _, r := range pi.References {
			if _, in := infos[r]; in && r != p && pos[r] > pos[p] {
				t.Errorf("%s comes before its reference %s: %v", p, r, got)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s := &store.Store{Dir: filepath.Join(root, "store")}
	a := s.Dir + "/dd6q030zgh4g66z31amskd61262bgyn9-top"
	b := s.Dir + "/vd8qd9khb0bf2fk5cqgizp2xicy23dk0-dep"
	for _, d := range []string{a + "/bin", b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// ./result → store path; a link inside one store path to another.
	if err := os.Symlink(a, filepath.Join(root, "result")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(b, filepath.Join(root, "result-dep")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve([]string{
		filepath.Join(root, "result"),
		a + "/bin/top",
		filepath.Join(root, "result-dep"),
		a,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a, b}; !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %v, want %v", got, want)
	}
	for _, bad := range []string{root, filepath.Join(root, "missing"), s.Dir + "/short"} {
		_, err := s.Resolve([]string{bad})
		if !errors.Is(err, store.ErrNotInStore) {
			t.Errorf("Resolve(%s) = %v, want ErrNotInStore", bad, err)
		}
	}
}

package binarycache_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

func TestCacheInfo(t *testing.T) {
	t.Parallel()
	info := binarycache.CacheInfo("/nix/store")
	if got := binarycache.CacheInfoStoreDir([]byte(info)); got != "/nix/store" {
		t.Fatalf("StoreDir of %q = %q", info, got)
	}
	if err := binarycache.CheckCacheInfo([]byte(info), "/nix/store", "s3://b"); err != nil {
		t.Fatal(err)
	}
	err := binarycache.CheckCacheInfo([]byte("StoreDir: /gnu/store\n"), "/nix/store", "s3://b")
	if err == nil || !strings.Contains(err.Error(), "s3://b serves store /gnu/store, not /nix/store") {
		t.Fatalf("got %v", err)
	}
	// A nix-cache-info without StoreDir (some hand-made caches) is accepted.
	if err := binarycache.CheckCacheInfo([]byte("WantMassQuery: 1\n"), "/nix/store", "s3://b"); err != nil {
		t.Fatal(err)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	if got := binarycache.NarinfoName("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello"); got != "0123456789abcdfghijklmnpqrsvwxyz.narinfo" {
		t.Errorf("NarinfoName = %q", got)
	}
	digest := append([]byte{0xab, 0x01}, make([]byte, 30)...)
	res := narstream.Result{FileHash: *nixhash.MustNewHash(nixhash.SHA256, digest)}
	if got := binarycache.NarName(res, narstream.Compression{Method: narstream.XZ}); got != "nar/ab01"+strings.Repeat("00", 30)+".nar.xz" {
		t.Errorf("NarName = %q", got)
	}
}

// TestReferences: the two fields a closure walk reads, as go-nix's full
// parser reads them, from narinfos as Nix and we write them; a narinfo
// without a StorePath, or naming something that is not a store path among
// its references, is an error.
func TestReferences(t *testing.T) {
	t.Parallel()
	const head = "StorePath: /nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello\nURL: nar/x.nar.zst\nCompression: zstd\n" +
		"NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw\nNarSize: 120\n"
	for _, tt := range []struct {
		name, text string
		refs       []string
	}{
		{"two", head + "References: 0123456789abcdfghijklmnpqrsvwxyz-hello zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40\nDeriver: unknown-deriver\n",
			[]string{"/s/0123456789abcdfghijklmnpqrsvwxyz-hello", "/s/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"}},
		{"none", head + "References: \n", nil},
		{"no line", head, nil},
		{"CRLF", strings.ReplaceAll(head+"References: zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40\n", "\n", "\r\n"),
			[]string{"/s/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"}},
	} {
		sp, refs, err := binarycache.References(tt.text, "/s")
		if err != nil || sp != "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello" || strings.Join(refs, " ") != strings.Join(tt.refs, " ") {
			t.Errorf("%s: %q %q %v", tt.name, sp, refs, err)
		}
		if ni, err := narinfo.Parse(strings.NewReader(strings.ReplaceAll(tt.text, "\r", ""))); err != nil || len(ni.References) != len(tt.refs) {
			t.Errorf("%s: go-nix reads %v, %v", tt.name, ni, err)
		}
	}
	for name, text := range map[string]string{
		"empty":        "",
		"no StorePath": "References: zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40\n",
		"a path":       head + "References: /etc/passwd\n",
		"a short name": head + "References: glibc\n",
		"a subdir":     head + "References: zyxwvsrqpnmlkjihgfdcba9876543210-glibc/../../etc\n",
	} {
		if _, _, err := binarycache.References(text, "/s"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSignedBy: a narinfo the Signer wrote is signed by its key and by no
// other; changing what the fingerprint covers (size, hash, a reference)
// or damaging the narinfo breaks it; a second, foreign signature beside
// ours does not; CRLF line ends do not matter.
func TestSignedBy(t *testing.T) {
	t.Parallel()
	keyOf := func(seed byte, name string) *signing.Key {
		s := make([]byte, ed25519.SeedSize)
		for i := range s {
			s[i] = seed + byte(i)
		}
		k, err := signing.Parse(name+":"+base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(s)), "")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ours, other := keyOf(1, "ours-1"), keyOf(100, "other-1")
	h, err := nixhash.ParseAny("sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw", nil)
	if err != nil {
		t.Fatal(err)
	}
	info := &store.PathInfo{Path: "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello", NarHash: h.Hash, NarSize: 120,
		References: []string{"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello", "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"}}
	res := narstream.Result{NarHash: h.Hash, NarSize: 120, FileHash: h.Hash, FileSize: 97, Compression: narstream.DefaultCompression}
	signed := binarycache.Signer{Key: ours}.Narinfo(info, res, "nar/x.nar.zst")
	both := binarycache.Signer{Key: ours}.Narinfo(&store.PathInfo{Path: info.Path, NarHash: h.Hash, NarSize: 120,
		References: info.References, Signatures: []string{"other-1:" + other.SignBase64(info.Fingerprint())}}, res, "nar/x.nar.zst")
	if strings.Count(both, "Sig: ") != 2 {
		t.Fatalf("want two signatures:\n%s", both)
	}
	for name, tt := range map[string]struct {
		text string
		key  *signing.Key
		want bool
	}{
		"ours":              {signed, ours, true},
		"another key":       {signed, other, false},
		"two, ours":         {both, ours, true},
		"two, the other":    {both, other, true},
		"CRLF":              {strings.ReplaceAll(signed, "\n", "\r\n"), ours, true},
		"size changed":      {strings.Replace(signed, "NarSize: 120", "NarSize: 121", 1), ours, false},
		"hash changed":      {strings.Replace(signed, "NarHash: sha256:04zwf782", "NarHash: sha256:14zwf782", 1), ours, false},
		"reference dropped": {strings.Replace(signed, " zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40", "", 1), ours, false},
		"no size":           {strings.Replace(signed, "NarSize: 120\n", "", 1), ours, false},
		"unsigned":          {binarycache.Signer{}.Narinfo(info, res, "nar/x.nar.zst"), ours, false},
		"empty":             {"", ours, false},
	} {
		if got := binarycache.SignedBy(tt.text, "/nix/store", tt.key); got != tt.want {
			t.Errorf("%s: SignedBy = %v, want %v", name, got, tt.want)
		}
	}
}

package binarycache_test

import (
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
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

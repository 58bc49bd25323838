package binarycache_test

import (
	"strings"
	"testing"

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

package signing_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/signing"
)

// The test vector of cachix-protocol.md §10 (seed bytes 0x01…0x20).
const (
	cachixKey = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA=="
	publicKey = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
	fp        = "1;/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello;sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello,/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"
	wantSig   = "vI1vvDAJb/EngmgGtovdLMc5QX1Sre64TBHSF4SG8uyA+Xr2XExZ/7Ux8xj2GCfm9WI/VT2mXhJSLBwxtQyvAA=="
)

func TestBothKeyForms(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, text, defName, wantName string }{
		{"cachix bare", cachixKey, "mycache.cachix.org-1", "mycache.cachix.org-1"},
		{"cachix bare with whitespace", "  " + cachixKey + "\n", "x", "x"},
		{"nix form", "test-1:" + cachixKey, "ignored", "test-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := signing.Parse(tt.text, tt.defName)
			if err != nil {
				t.Fatal(err)
			}
			if k.Name != tt.wantName {
				t.Errorf("name = %q", k.Name)
			}
			if got := k.SignBase64(fp); got != wantSig {
				t.Errorf("signature = %s, want %s", got, wantSig)
			}
			if got := k.Name + ":" + k.SignBase64(fp); got != tt.wantName+":"+wantSig {
				t.Errorf("sig line = %s", got)
			}
			if k.PublicKeyBare() != publicKey || k.PublicKey() != tt.wantName+":"+publicKey {
				t.Errorf("public key = %s", k.PublicKey())
			}
		})
	}
}

func TestBadKeysNeverLeak(t *testing.T) {
	t.Parallel()
	broken := cachixKey[:40] + "AAAA" + cachixKey[44:] // public half no longer matches
	for _, text := range []string{"", "name:", ":" + cachixKey, "%%%%invalid%%%%", "c2hvcnQ=", broken} {
		_, err := signing.Parse(text, "n")
		if !errors.Is(err, signing.ErrBadKey) {
			t.Errorf("Parse(%q) = %v, want ErrBadKey", text, err)
			continue
		}
		if len(text) > 8 && strings.Contains(err.Error(), text[:8]) {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}

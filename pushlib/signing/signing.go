// Package signing loads ed25519 signing keys in both forms users have them in
// and signs narinfo fingerprints.
//
// Nix writes secret keys as "keyname:base64(64 bytes)"; Cachix keeps a bare
// "base64(64 bytes)" (CACHIX_SIGNING_KEY, cachix.dhall). Cachix itself
// decodes leniently and would mis-read a Nix-form key; here the name is
// stripped instead, and a bare key gets the name the caller supplies.
package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// ErrBadKey marks a signing key that cannot be decoded. Its message never
// contains key material.
var ErrBadKey = fault.BadInput("invalid signing key")

// Key is an ed25519 secret key with the name Nix shows in Sig: lines.
type Key struct {
	// Name is the key name (e.g. "mycache.cachix.org-1"); may be empty for a
	// bare Cachix key used only to sign Cachix uploads.
	Name string
	priv ed25519.PrivateKey
}

// Parse reads a secret key in Nix form ("name:base64") or Cachix's bare form
// ("base64"). defaultName names a bare key. Surrounding whitespace is ignored.
func Parse(text, defaultName string) (*Key, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("%w: the key is empty", ErrBadKey)
	}
	name, b64 := defaultName, text
	if i := strings.LastIndexByte(text, ':'); i >= 0 {
		name, b64 = text[:i], text[i+1:]
		if name == "" {
			return nil, fmt.Errorf("%w: empty key name before ':'", ErrBadKey)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadKey)
	}
	switch len(raw) {
	case ed25519.PrivateKeySize:
		priv := ed25519.PrivateKey(raw)
		// The second half must be the public key of the first (seed) half.
		if !ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]).Equal(priv) {
			return nil, fmt.Errorf("%w: the public half does not match the secret half", ErrBadKey)
		}
		return &Key{Name: name, priv: priv}, nil
	case ed25519.PublicKeySize:
		// 32 bytes is what a public key is (trusted-public-keys, the
		// cache's settings page); read as a seed it would sign with a key
		// nothing trusts.
		return nil, fmt.Errorf("%w: this is a public key (32 bytes), not a secret key; give the secret key "+
			"(64 bytes: what `nix key generate-secret` prints, or the secretKey `cachix generate-keypair` wrote)", ErrBadKey)
	}
	return nil, fmt.Errorf("%w: %d bytes, want a 64-byte ed25519 secret key", ErrBadKey, len(raw))
}

// Sign returns the raw 64-byte ed25519 signature of fingerprint.
func (k *Key) Sign(fingerprint string) []byte {
	return ed25519.Sign(k.priv, []byte(fingerprint))
}

// SignBase64 returns the bare base64 signature, as Cachix's cSig expects.
func (k *Key) SignBase64(fingerprint string) string {
	return base64.StdEncoding.EncodeToString(k.Sign(fingerprint))
}

// PublicKey returns the public key in Nix form ("name:base64"), as
// trusted-public-keys lists it.
func (k *Key) PublicKey() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}

// PublicKeyBare returns the base64 public key without a name, as Cachix's
// POST /key takes it.
func (k *Key) PublicKeyBare() string {
	return base64.StdEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}

// String never reveals key material.
func (k *Key) String() string { return "signing key " + k.Name }

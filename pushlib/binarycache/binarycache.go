// Package binarycache is what every plain Nix binary cache shares, whatever
// stores its files (a directory, an S3 bucket): the layout `nix copy`
// writes (nix-cache-info, <hash>.narinfo, nar/<filehash>.nar.<ext>) and
// the signed narinfo text.
package binarycache

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// CacheInfoFile is the name of the file that describes a binary cache.
const CacheInfoFile = "nix-cache-info"

// CacheInfo is the content of nix-cache-info for a cache serving storeDir.
func CacheInfo(storeDir string) string {
	return "StoreDir: " + storeDir + "\nWantMassQuery: 1\nPriority: 30\n"
}

// CacheInfoStoreDir returns the StoreDir an existing nix-cache-info
// declares, "" when it declares none.
func CacheInfoStoreDir(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "StoreDir:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// CheckCacheInfo fails when an existing nix-cache-info (named by where, for
// the message) serves another store than storeDir.
func CheckCacheInfo(data []byte, storeDir, where string) error {
	if d := CacheInfoStoreDir(data); d != "" && d != storeDir {
		return fmt.Errorf("%s serves store %s, not %s", where, d, storeDir)
	}
	return nil
}

// NarinfoName is the name of a store path's narinfo ("<hash>.narinfo").
func NarinfoName(storePath string) string {
	return store.HashPart(storePath) + ".narinfo"
}

// NarName is where a NAR compressed with c lives, relative to the cache
// root ("nar/<file hash in hex>.nar.zst"): named by its content, so two
// pushes of the same bytes write the same file.
func NarName(res narstream.Result, c narstream.Compression) string {
	return "nar/" + res.FileHashHex() + "." + c.FileExt()
}

// Signer renders narinfos, signing them with Key when it is set.
type Signer struct {
	// Key, if set, adds a Sig: line (name:signature).
	Key *signing.Key
	// OmitDeriver leaves the Deriver line out.
	OmitDeriver bool
}

// Narinfo renders the narinfo text for an uploaded NAR found at url
// (relative to the cache root). The local store's existing signatures are
// kept and the signer's key, if any, adds one.
func (s Signer) Narinfo(info *store.PathInfo, res narstream.Result, url string) string {
	ni := narinfo.NarInfo{
		StorePath:   info.Path,
		URL:         url,
		Compression: string(res.Compression.Method),
		FileHash:    nixhash.MustNewHashWithEncoding(nixhash.SHA256, res.FileHash.Digest(), nixhash.NixBase32, true),
		FileSize:    res.FileSize,
		NarHash:     nixhash.MustNewHashWithEncoding(nixhash.SHA256, res.NarHash.Digest(), nixhash.NixBase32, true),
		NarSize:     res.NarSize,
		References:  info.ReferenceNames(),
		CA:          info.CA,
	}
	if info.Deriver != "" && !s.OmitDeriver {
		ni.Deriver = filepath.Base(info.Deriver)
	}
	seen := map[string]bool{}
	for _, sig := range info.Signatures {
		parsed, err := signature.ParseSignature(sig)
		if err != nil || seen[parsed.Name] {
			continue // an unparsable local signature is not ours to publish
		}
		seen[parsed.Name] = true
		ni.Signatures = append(ni.Signatures, parsed)
	}
	if k := s.Key; k != nil && !seen[k.Name] {
		ni.Signatures = append(ni.Signatures, signature.Signature{Name: k.Name, Data: k.Sign(info.Fingerprint())})
	}
	return ni.String()
}

// narinfoFields are the narinfo lines the closure walk and the signature
// check read, as they stand.
type narinfoFields struct {
	storePath, narHash, narSize string
	refs, sigs                  []string
}

// readNarinfo picks those lines out of narinfo text; the values are parsed
// by go-nix (nixhash, signature) where they are used. go-nix's
// narinfo.Parse reads every field but allocates a 1 MiB line buffer per
// call: a walk of 20,000 narinfos took 10 s with it instead of a tenth of
// one, and the 32 narinfos a signed no-op checks cost 32 MiB of garbage.
func readNarinfo(text string) narinfoFields {
	var f narinfoFields
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "StorePath":
			f.storePath = v
		case "NarHash":
			f.narHash = v
		case "NarSize":
			f.narSize = v
		case "References":
			f.refs = strings.Fields(v)
		case "Sig":
			f.sigs = append(f.sigs, v)
		}
	}
	return f
}

// References reads the StorePath and References fields of narinfo text
// and returns the references as absolute paths in storeDir.
func References(text, storeDir string) (storePath string, refs []string, err error) {
	return readNarinfo(text).paths(storeDir)
}

// paths checks the StorePath and References and returns them, the
// references as absolute paths in storeDir.
func (f narinfoFields) paths(storeDir string) (string, []string, error) {
	if f.storePath == "" {
		return "", nil, errors.New("the narinfo has no StorePath")
	}
	refs := make([]string, len(f.refs))
	for i, r := range f.refs {
		// <32-character hash>-<name>, a name in the store directory.
		if len(r) < 34 || r[32] != '-' || strings.ContainsRune(r, '/') {
			return "", nil, fmt.Errorf("the narinfo's references name %q, not a store path", r)
		}
		refs[i] = storeDir + "/" + r
	}
	return f.storePath, refs, nil
}

// SignedBy reports whether the narinfo text, of a path in the store at
// storeDir, carries a valid signature of key: one named after the key
// whose ed25519 signature of the path's fingerprint checks out with its
// public half. A narinfo that does not parse is not signed.
func SignedBy(text, storeDir string, key *signing.Key) bool {
	f := readNarinfo(text)
	path, refs, err := f.paths(storeDir)
	if err != nil {
		return false
	}
	h, err := nixhash.ParseAny(f.narHash, nil)
	if err != nil {
		return false
	}
	size, err := strconv.ParseUint(f.narSize, 10, 64)
	if err != nil {
		return false
	}
	pk, err := signature.ParsePublicKey(key.PublicKey())
	if err != nil {
		return false
	}
	fp := (&store.PathInfo{Path: path, NarHash: h.Hash, NarSize: size, References: refs}).Fingerprint()
	for _, text := range f.sigs {
		if sig, err := signature.ParseSignature(text); err == nil && pk.Verify(fp, sig) {
			return true
		}
	}
	return false
}

// Unsigned reads, through read, the narinfos of up to limit of paths
// (which the cache has) and returns those without a valid signature of key,
// and how many it read. A narinfo that cannot be read is not counted: this
// is a warning, never a reason to fail a push. A nil key checks nothing.
func Unsigned(ctx context.Context, paths []string, limit int, storeDir string, key *signing.Key,
	read func(ctx context.Context, path string) ([]byte, error)) ([]string, int, error) {
	if key == nil {
		return nil, 0, nil
	}
	var unsigned []string
	checked := 0
	for _, p := range paths {
		if checked == limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		text, err := read(ctx, p)
		if err != nil {
			continue
		}
		checked++
		if !SignedBy(string(text), storeDir, key) {
			unsigned = append(unsigned, p)
		}
	}
	return unsigned, checked, nil
}

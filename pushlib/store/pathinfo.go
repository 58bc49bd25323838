// Package store reads the local Nix store: it resolves user inputs to store
// paths, computes runtime closures and reports the metadata (NAR hash, NAR
// size, references, deriver, signatures, content address) that the Nix
// database records for each path.
//
// It talks to Nix through the `nix` command (`nix path-info --json`), passing
// the experimental features it needs on the command line so that nothing is
// required of the user's configuration. The JSON output changed shape across
// Nix and Lix releases; ParsePathInfoJSON accepts all of them.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixhash"
)

// DefaultStoreDir is the store directory used when Nix does not say otherwise.
const DefaultStoreDir = "/nix/store"

// PathInfo is what the local Nix database records about one valid store path.
type PathInfo struct {
	// Path is the absolute store path, e.g. /nix/store/<hash>-hello-2.12.1.
	Path string
	// NarHash is the SHA-256 hash of the path's NAR serialisation.
	NarHash nixhash.Hash
	// NarSize is the length in bytes of the NAR serialisation.
	NarSize uint64
	// References are the absolute store paths this path refers to, sorted,
	// including Path itself when it is self-referencing.
	References []string
	// Deriver is the absolute path of the .drv that built it, or "".
	Deriver string
	// Signatures are the signatures the local store holds, in Nix text form.
	Signatures []string
	// CA is the content address in narinfo text form, or "".
	CA string
}

// NarHashString renders the NAR hash as Nix writes it in narinfo files:
// "sha256:" followed by 52 nix-base32 characters.
func (pi *PathInfo) NarHashString() string {
	return pi.NarHash.Format(nixhash.NixBase32, true)
}

// ReferenceNames returns the base names (<hash>-<name>) of the references,
// sorted, as narinfo files and the Cachix API list them.
func (pi *PathInfo) ReferenceNames() []string {
	out := make([]string, len(pi.References))
	for i, r := range pi.References {
		out[i] = path.Base(r)
	}
	sort.Strings(out)
	return out
}

// Fingerprint is the string Nix signs for a path ("1;path;narHash;narSize;refs").
// References appear as full paths, sorted and comma-separated.
func (pi *PathInfo) Fingerprint() string {
	refs := append([]string(nil), pi.References...)
	sort.Strings(refs)
	return "1;" + pi.Path + ";" + pi.NarHashString() + ";" + fmt.Sprint(pi.NarSize) + ";" + strings.Join(refs, ",")
}

// ErrParsePathInfo marks output of `nix path-info --json` that could not be understood.
var ErrParsePathInfo = errors.New("unexpected output from nix path-info --json")

// rawPathInfo is one entry of `nix path-info --json` in any of its shapes.
type rawPathInfo struct {
	Path       string          `json:"path"`
	NarHash    json.RawMessage `json:"narHash"`
	NarSize    uint64          `json:"narSize"`
	References []string        `json:"references"`
	Deriver    *string         `json:"deriver"`
	Signatures json.RawMessage `json:"signatures"`
	Sigs       json.RawMessage `json:"sigs"`
	CA         json.RawMessage `json:"ca"`
	Valid      *bool           `json:"valid"`
}

// ParsePathInfoJSON parses the output of `nix path-info --json [--recursive]`
// in every shape Nix and Lix have produced:
//
//   - Nix ≤ 2.18 and Lix: an array of objects, each with a "path" field;
//   - Nix 2.19–2.32: an object keyed by absolute store path (null for invalid paths);
//   - Nix ≥ 2.33: {"version": N, "storeDir": "...", "info": {...}}, keyed by
//     base name in version 2, with base-name references and structured
//     "narHash"/"ca" objects.
//
// Signatures may be "name:base64" strings or, since Nix's format 3,
// {"keyName","sig"} objects (under "signatures", or "sigs" as some tools
// write them); they come back in the text form.
//
// Hashes may be SRI ("sha256-<base64>"), "sha256:<nix32|hex|base64>" or a
// {"algorithm","format","hash"} object. Invalid paths (null entries or
// "valid": false) are left out of the result. storeDir is used to complete
// base names; pass "" for DefaultStoreDir.
func ParsePathInfoJSON(data []byte, storeDir string) (map[string]*PathInfo, error) {
	if storeDir == "" {
		storeDir = DefaultStoreDir
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty output", ErrParsePathInfo)
	}
	var entries []rawPathInfo
	switch data[0] {
	case '[':
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrParsePathInfo, err)
		}
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrParsePathInfo, err)
		}
		if info, ok := top["info"]; ok && isObject(info) {
			if sd, ok := top["storeDir"]; ok {
				var s string
				if json.Unmarshal(sd, &s) == nil && s != "" {
					storeDir = s
				}
			}
			top = nil
			if err := json.Unmarshal(info, &top); err != nil {
				return nil, fmt.Errorf("%w: info: %v", ErrParsePathInfo, err)
			}
		}
		keys := make([]string, 0, len(top))
		for k := range top {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := top[k]
			if !isObject(v) {
				continue // null (invalid path), or top-level metadata such as "version"
			}
			var e rawPathInfo
			if err := json.Unmarshal(v, &e); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrParsePathInfo, k, err)
			}
			e.Path = k
			entries = append(entries, e)
		}
	default:
		return nil, fmt.Errorf("%w: neither a JSON array nor an object", ErrParsePathInfo)
	}

	out := make(map[string]*PathInfo, len(entries))
	for _, e := range entries {
		if e.Valid != nil && !*e.Valid {
			continue
		}
		if e.Path == "" {
			return nil, fmt.Errorf("%w: entry without a path", ErrParsePathInfo)
		}
		p := absolute(storeDir, e.Path)
		h, err := parseHashJSON(e.NarHash, &sha256)
		if err != nil {
			return nil, fmt.Errorf("%w: narHash of %s: %v", ErrParsePathInfo, p, err)
		}
		ca, err := parseCAJSON(e.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: ca of %s: %v", ErrParsePathInfo, p, err)
		}
		rawSigs := e.Signatures
		if len(bytes.TrimSpace(rawSigs)) == 0 || string(bytes.TrimSpace(rawSigs)) == "null" {
			rawSigs = e.Sigs
		}
		sigs, err := parseSignaturesJSON(rawSigs)
		if err != nil {
			return nil, fmt.Errorf("%w: signatures of %s: %v", ErrParsePathInfo, p, err)
		}
		pi := &PathInfo{Path: p, NarHash: h, NarSize: e.NarSize, Signatures: sigs, CA: ca}
		for _, r := range e.References {
			pi.References = append(pi.References, absolute(storeDir, r))
		}
		sort.Strings(pi.References)
		if e.Deriver != nil && *e.Deriver != "" {
			pi.Deriver = absolute(storeDir, *e.Deriver)
		}
		out[p] = pi
	}
	return out, nil
}

// parseSignaturesJSON reads a list of signatures, each "name:base64" or
// {"keyName": name, "sig": base64}, into the text form.
func parseSignaturesJSON(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '"' {
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, err
			}
			out = append(out, s)
			continue
		}
		var obj struct {
			KeyName string `json:"keyName"`
			Sig     string `json:"sig"`
		}
		if err := json.Unmarshal(it, &obj); err != nil {
			return nil, err
		}
		if obj.KeyName == "" || obj.Sig == "" {
			return nil, errors.New(`a signature object needs "keyName" and "sig"`)
		}
		out = append(out, obj.KeyName+":"+obj.Sig)
	}
	return out, nil
}

// SignedBy reports whether the path carries a signature by a key with one
// of the given names (the names only: the signatures are not verified).
func (pi *PathInfo) SignedBy(names []string) (string, bool) {
	for _, s := range pi.Signatures {
		name, _, ok := strings.Cut(s, ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				return n, true
			}
		}
	}
	return "", false
}

// isObject reports whether raw JSON is an object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// absolute turns a base name into a full store path; full paths pass through.
func absolute(storeDir, p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return storeDir + "/" + p
}

// sha256 is the algorithm of every NAR hash.
var sha256 = nixhash.SHA256

// parseHashJSON decodes a hash given as a string ("sha256-<base64>" (SRI),
// or "<algo>:<digest>" with a nix-base32, hex or base64 digest) or as a
// structured {"algorithm","format","hash"} object. algo, if not nil, is
// the algorithm it must have.
func parseHashJSON(raw json.RawMessage, algo *nixhash.Algorithm) (nixhash.Hash, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nixhash.Hash{}, errors.New("missing")
	}
	var text string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return nixhash.Hash{}, err
		}
	} else {
		var obj struct {
			Algorithm string `json:"algorithm"`
			Hash      string `json:"hash"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nixhash.Hash{}, err
		}
		// The digest's encoding ("format") follows from its length.
		text = obj.Algorithm + ":" + obj.Hash
	}
	h, err := nixhash.ParseAny(text, algo)
	if err != nil {
		return nixhash.Hash{}, fmt.Errorf("hash %q: %w", text, err)
	}
	return h.Hash, nil
}

// parseCAJSON renders a content address in narinfo text form from either the
// old string form or the Nix 2.33+ {"method","hash"} object.
func parseCAJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var obj struct {
		Method string          `json:"method"`
		Hash   json.RawMessage `json:"hash"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", err
	}
	h, err := parseHashJSON(obj.Hash, nil)
	if err != nil {
		return "", err
	}
	nix32 := h.Format(nixhash.NixBase32, true)
	switch obj.Method {
	case "text":
		return "text:" + nix32, nil
	case "flat":
		return "fixed:" + nix32, nil
	case "nar":
		return "fixed:r:" + nix32, nil
	case "git":
		return "fixed:git:" + nix32, nil
	default:
		return "", fmt.Errorf("unknown content-address method %q", obj.Method)
	}
}

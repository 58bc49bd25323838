package cachixserver

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/ulikunitz/xz"
)

// storeDir is the store directory Cachix hard-codes (protocol §8.3).
const storeDir = "/nix/store"

// unknownDeriver is the literal a client sends when there is no deriver.
const unknownDeriver = "unknown-deriver"

// narInfoCreate is the decoded "narInfoCreate" object (protocol §4.10).
type narInfoCreate struct {
	storeHash   string
	storeSuffix string
	narHash     string
	narSize     int64
	fileHash    string
	fileSize    int64
	references  []string
	deriver     string
	sig         *string
}

// parseNarInfoCreate decodes the object strictly: exact field names, exact
// JSON types, then the format of every value.
func parseNarInfoCreate(raw json.RawMessage) (*narInfoCreate, error) {
	o, err := decodeObject(raw, "narInfoCreate",
		"cStoreHash", "cStoreSuffix", "cNarHash", "cNarSize", "cFileHash",
		"cFileSize", "cReferences", "cDeriver", "cSig")
	if err != nil {
		return nil, err
	}
	var n narInfoCreate
	var errs []error
	str := func(key string, dst *string) {
		v, err := o.str(key)
		errs = append(errs, err)
		*dst = v
	}
	num := func(key string, dst *int64) {
		v, err := o.integer(key)
		errs = append(errs, err)
		*dst = v
	}
	str("cStoreHash", &n.storeHash)
	str("cStoreSuffix", &n.storeSuffix)
	str("cNarHash", &n.narHash)
	num("cNarSize", &n.narSize)
	str("cFileHash", &n.fileHash)
	num("cFileSize", &n.fileSize)
	str("cDeriver", &n.deriver)
	refs, err := o.strList("cReferences")
	errs = append(errs, err)
	n.references = refs
	sig, err := o.optStr("cSig")
	errs = append(errs, err)
	n.sig = sig
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("narInfoCreate: %w", err)
	}
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("narInfoCreate: %w", err)
	}
	return &n, nil
}

// validate checks the encoding of every field (protocol §4.10, §8).
func (n *narInfoCreate) validate() error {
	if err := checkHashPart(n.storeHash); err != nil {
		return fmt.Errorf("cStoreHash: %w", err)
	}
	if err := checkName(n.storeSuffix); err != nil {
		return fmt.Errorf("cStoreSuffix: %w", err)
	}
	if err := checkNarHash(n.narHash); err != nil {
		return fmt.Errorf("cNarHash: %w", err)
	}
	if n.narSize <= 0 {
		return fmt.Errorf("cNarSize must be positive, got %d", n.narSize)
	}
	if !isLowerHex(n.fileHash, sha256.Size*2) {
		return fmt.Errorf("cFileHash must be 64 lower-case hex digits without a prefix, got %q", n.fileHash)
	}
	if n.fileSize <= 0 {
		return fmt.Errorf("cFileSize must be positive, got %d", n.fileSize)
	}
	self := n.storeHash + "-" + n.storeSuffix
	for i, ref := range n.references {
		if err := checkBaseName(ref); err != nil {
			return fmt.Errorf("cReferences[%d] %q: %w (want the base name <hash>-<name>)", i, ref, err)
		}
		if ref[:32] == n.storeHash && ref != self {
			return fmt.Errorf("cReferences[%d] %q has the path's hash but not its name %q", i, ref, self)
		}
		if i > 0 && n.references[i-1] >= ref {
			return fmt.Errorf("cReferences must be sorted and unique: %q comes after %q", ref, n.references[i-1])
		}
	}
	if n.deriver != unknownDeriver {
		if err := checkBaseName(n.deriver); err != nil || !strings.HasSuffix(n.deriver, ".drv") {
			return fmt.Errorf("cDeriver must be %q or a base name <hash>-<name>.drv, got %q", unknownDeriver, n.deriver)
		}
	}
	return nil
}

// storePath is the full store path the narinfo describes.
func (n *narInfoCreate) storePath() string {
	return storeDir + "/" + n.storeHash + "-" + n.storeSuffix
}

// fingerprint is the string Nix and Cachix sign (protocol §5.8):
// 1;<path>;<narHash>;<narSize>;<full reference paths, comma-joined>.
func fingerprint(storePath, narHash string, narSize int64, refs []string) string {
	full := make([]string, len(refs))
	for i, r := range refs {
		full[i] = storeDir + "/" + r
	}
	sort.Strings(full)
	return "1;" + storePath + ";" + narHash + ";" + strconv.FormatInt(narSize, 10) + ";" + strings.Join(full, ",")
}

// checkSignature verifies a self-signed cache's cSig: bare standard base64
// of a 64-byte ed25519 signature of the fingerprint.
func checkSignature(n *narInfoCreate, pub ed25519.PublicKey) error {
	if n.sig == nil {
		return errors.New("No signature found. Most likely because signing key wasn't set. Run `cachix generate-keypair`.")
	}
	if strings.Contains(*n.sig, ":") {
		return errors.New("cSig must be bare base64 without a key name")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(*n.sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("cSig must be standard base64 of a %d-byte ed25519 signature", ed25519.SignatureSize)
	}
	fp := fingerprint(n.storePath(), n.narHash, n.narSize, n.references)
	if !ed25519.Verify(pub, []byte(fp), raw) {
		return fmt.Errorf("cSig does not verify against the cache's public key for fingerprint %s", fp)
	}
	return nil
}

// checkHashPart accepts exactly 32 nix-base32 characters.
func checkHashPart(h string) error {
	if len(h) != 32 {
		return fmt.Errorf("want 32 nix-base32 characters, got %d in %q", len(h), h)
	}
	for i := 0; i < len(h); i++ {
		if !nixbase32.Is(h[i]) {
			return fmt.Errorf("character %q of %q is not nix-base32", h[i], h)
		}
	}
	return nil
}

// checkName accepts a store path name as Nix does.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 211 {
		return fmt.Errorf("name longer than 211 characters: %q", name)
	}
	if name[0] == '.' {
		return fmt.Errorf("name starts with a dot: %q", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+-._?=", c) >= 0) {
			return fmt.Errorf("character %q is not allowed in a store path name %q", c, name)
		}
	}
	return nil
}

// checkBaseName accepts <32 nix-base32>-<name>, i.e. a store path without
// the store directory.
func checkBaseName(b string) error {
	if strings.HasPrefix(b, "/") {
		return errors.New("a full path, not a base name")
	}
	if len(b) < 34 || b[32] != '-' {
		return errors.New("not of the form <hash>-<name>")
	}
	if err := checkHashPart(b[:32]); err != nil {
		return err
	}
	return checkName(b[33:])
}

// checkNarHash accepts "sha256:" followed by 52 nix-base32 characters.
func checkNarHash(h string) error {
	rest, ok := strings.CutPrefix(h, "sha256:")
	if !ok {
		return fmt.Errorf("want sha256:<nix-base32>, got %q", h)
	}
	if len(rest) != nixbase32.EncodedLen(sha256.Size) {
		return fmt.Errorf("want 52 nix-base32 characters after sha256:, got %d in %q", len(rest), h)
	}
	if err := nixbase32.ValidateString(rest); err != nil {
		return fmt.Errorf("invalid nix-base32 in %q: %w", h, err)
	}
	return nil
}

// isLowerHex reports whether s is n lower-case hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// countingHash hashes and counts what is written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

// Write feeds the hash and the counter.
func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// errRecorder remembers the first non-EOF error of a reader, so that a
// decompression error can be told apart from a malformed NAR.
type errRecorder struct {
	r   io.Reader
	err error
}

// Read passes through and records errors.
func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// narCheck is what verifyNAR measured.
type narCheck struct {
	fileHash string // lower-case hex
	fileSize int64
	narHash  string // sha256:<nix32>
	narSize  int64
}

// verifyNAR streams the compressed upload once: it hashes and counts the
// compressed bytes, decompresses them (zst or xz), hashes and counts the
// NAR, and parses it with go-nix's NAR reader for well-formedness. It then
// compares everything with the client's claims, reporting the most basic
// disagreement first.
func verifyNAR(r io.Reader, compression string, claim *narInfoCreate) (narCheck, error) {
	file := &countingHash{h: sha256.New()}
	compressed := io.TeeReader(r, file)

	narHash := &countingHash{h: sha256.New()}
	var structural error
	var dec *errRecorder
	switch compression {
	case "zst":
		zr, err := zstd.NewReader(compressed, zstd.WithDecoderConcurrency(1))
		if err != nil {
			structural = fmt.Errorf("decompressing NAR (zst): %w", err)
			break
		}
		defer zr.Close()
		dec = &errRecorder{r: zr}
	case "xz":
		xr, err := xz.NewReader(compressed)
		if err != nil {
			structural = fmt.Errorf("decompressing NAR (xz): %w", err)
			break
		}
		dec = &errRecorder{r: xr}
	default:
		return narCheck{}, fmt.Errorf("unknown compression %q", compression)
	}
	if dec != nil {
		structural = parseNAR(io.TeeReader(dec, narHash))
		if dec.err != nil {
			structural = fmt.Errorf("decompressing NAR (%s): %w", compression, dec.err)
		}
	}
	// Hash whatever the decompressor left unread (trailing garbage, or the
	// rest after an error) so that the file hash covers every byte.
	if _, err := io.Copy(io.Discard, compressed); err != nil {
		return narCheck{}, fmt.Errorf("reading stored parts: %w", err)
	}
	got := narCheck{
		fileHash: hex.EncodeToString(file.h.Sum(nil)),
		fileSize: file.n,
		narHash:  "sha256:" + nixbase32.EncodeToString(narHash.h.Sum(nil)),
		narSize:  narHash.n,
	}
	switch {
	case got.fileSize != claim.fileSize:
		return got, fmt.Errorf("cFileSize %d does not match the uploaded size %d", claim.fileSize, got.fileSize)
	case got.fileHash != claim.fileHash:
		return got, fmt.Errorf("cFileHash %s does not match the uploaded data's SHA-256 %s", claim.fileHash, got.fileHash)
	case structural != nil:
		return got, structural
	case got.narSize != claim.narSize:
		return got, fmt.Errorf("cNarSize %d does not match the NAR's size %d", claim.narSize, got.narSize)
	case got.narHash != claim.narHash:
		return got, fmt.Errorf("cNarHash %s does not match the NAR's hash %s", claim.narHash, got.narHash)
	}
	return got, nil
}

// truncationGuard turns the end of the input into io.ErrUnexpectedEOF. A
// well-formed NAR ends with its closing token, so the parser never needs
// to see EOF; go-nix's reader, however, takes an EOF at a token boundary
// for the regular end of the archive and would accept a truncated NAR.
type truncationGuard struct {
	r   io.Reader
	eof bool
}

// Read passes data through and reports the end as truncation.
func (g *truncationGuard) Read(p []byte) (int, error) {
	if g.eof {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := g.r.Read(p)
	if err == io.EOF {
		g.eof = true
		if n > 0 {
			return n, nil
		}
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// errDetached is what go-nix's parser goroutine reads once parseNAR gave up.
var errDetached = errors.New("NAR parsing abandoned")

// detachableReader lets parseNAR cut go-nix's parser goroutine off from
// the input. When Next fails on an ordering check, that goroutine is still
// parked inside a directory; closing the reader resumes it and it goes on
// reading. After detach it only gets errDetached, so it can neither race
// with the caller's use of the decompressor nor keep it alive; it then
// stays blocked reporting that error to nobody (a goroutine leaked per
// malformed NAR, acceptable in a test server).
type detachableReader struct {
	mu sync.Mutex
	r  io.Reader
}

// Read reads from the input unless detached.
func (d *detachableReader) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.r == nil {
		return 0, errDetached
	}
	return d.r.Read(p)
}

// detach cuts the input off, waiting for a read in progress.
func (d *detachableReader) detach() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.r = nil
}

// parseNAR reads a whole NAR with go-nix's reader and requires that
// nothing follows it.
func parseNAR(r io.Reader) error {
	in := &detachableReader{r: &truncationGuard{r: r}}
	nr, err := nar.NewReader(in)
	if err != nil {
		return fmt.Errorf("malformed NAR: %w", err)
	}
	fail := func(err error) error {
		in.detach()
		_ = nr.Close()
		return err
	}
	for {
		hdr, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("malformed NAR: %w", err))
		}
		if err := hdr.Validate(); err != nil {
			return fail(fmt.Errorf("malformed NAR entry %s: %w", hdr.Path, err))
		}
		if _, err := io.Copy(io.Discard, nr); err != nil {
			return fail(fmt.Errorf("malformed NAR: reading %s: %w", hdr.Path, err))
		}
	}
	_ = nr.Close()
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return fmt.Errorf("malformed NAR: reading past its end: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("malformed NAR: %d bytes of trailing data", n)
	}
	return nil
}

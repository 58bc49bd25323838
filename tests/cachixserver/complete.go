package cachixserver

import (
	"crypto/ed25519"
	"crypto/md5" //nolint:gosec // S3's Content-MD5 is MD5 by definition
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
)

// handleComplete finishes an upload and creates the narinfo:
// POST multipart-nar/{narId}/complete?uploadId= with {parts, narInfoCreate}.
//
// Checks, in order: write access; the upload exists in this cache with
// this uploadId; the JSON body (exact field names and types); the
// narInfoCreate formats; RejectPath; the part list against the uploaded
// parts; the signature policy of the cache; then one streaming pass over
// the stored data verifying sizes, hashes, decompression and the NAR
// structure. Only then is anything published.
func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permWrite)
	if c == nil {
		return
	}
	u := s.lookupUpload(w, r, c)
	if u == nil {
		return
	}
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body, "request body", "parts", "narInfoCreate")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	listed, err := parseParts(o["parts"])
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	claim, err := parseNarInfoCreate(o["narInfoCreate"])
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}

	s.mu.Lock()
	if s.rejectPaths[claim.storeHash] {
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Store path %s is rejected by this test server (RejectPath)", claim.storePath())
		return
	}
	if s.uploads[u.narID] != u || u.completing {
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Upload %s is already being completed, or was completed or aborted", u.narID)
		return
	}
	if err := checkParts(listed, u, s.cfg.MinPartSize); err != nil {
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	selfSigned, pub := c.selfSigned, c.publicKey
	parts := make([]blob, len(listed))
	var partMD5s []string
	for i, p := range listed {
		parts[i] = u.parts[p.number].data
		if m := u.parts[p.number].md5; m != "" {
			partMD5s = append(partMD5s, m)
		}
	}
	u.completing = true
	s.mu.Unlock()

	fail := func(status int, format string, args ...any) {
		s.mu.Lock()
		u.completing = false
		s.mu.Unlock()
		s.reject(w, r, status, format, args...)
	}

	switch {
	case selfSigned && pub == nil:
		fail(http.StatusBadRequest, "No public key set yet. Run 'cachix generate-keypair' first.")
		return
	case selfSigned:
		if err := checkSignature(claim, pub); err != nil {
			fail(http.StatusBadRequest, "%v", err)
			return
		}
	case claim.sig != nil:
		fail(http.StatusBadRequest, "cSig must be null on a managed cache (the server signs); got a signature")
		return
	}

	nb := newNarBlob(parts)
	got := narCheck{fileHash: claim.fileHash, fileSize: claim.fileSize}
	if !s.cfg.DeferVerification {
		rc := nb.open()
		var err error
		got, err = verifyNAR(rc, u.compression, claim)
		_ = rc.Close()
		if err != nil {
			fail(http.StatusBadRequest, "%s: %v", claim.storePath(), err)
			return
		}
	}

	entry := &narinfoEntry{
		hash:        claim.storeHash,
		suffix:      claim.storeSuffix,
		narHash:     claim.narHash,
		narSize:     claim.narSize,
		fileHash:    got.fileHash,
		fileSize:    got.fileSize,
		ext:         u.compression,
		references:  append([]string(nil), claim.references...),
		deriver:     claim.deriver,
		createdOn:   s.now().UTC(),
		fingerprint: fingerprint(claim.storePath(), claim.narHash, claim.narSize, claim.references),
	}

	s.mu.Lock()
	existing := c.narinfos[entry.hash]
	switch {
	case existing != nil && (existing.suffix != entry.suffix || existing.narHash != entry.narHash || existing.narSize != entry.narSize):
		u.completing = false
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "%s is already in the cache with a different name or NAR hash; "+
			"an existing entry cannot be overwritten", claim.storePath())
		return
	case existing != nil:
		// Already there (e.g. a retried completion): accept, change nothing.
		s.dropUploadLocked(u, true)
		s.stats.DuplicateCompletes++
	default:
		if selfSigned {
			entry.sig = c.keyName + ":" + *claim.sig
		} else {
			entry.sig = c.keyName + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(c.signer, []byte(entry.fingerprint)))
		}
		keepData := false
		if _, ok := c.nars[entry.narFile()]; !ok {
			c.nars[entry.narFile()] = nb
			keepData = true
		}
		c.narinfos[entry.hash] = entry
		s.dropUploadLocked(u, !keepData)
		s.stats.UploadsCompleted++
		if s.cfg.DeferVerification {
			s.deferred = append(s.deferred, deferredCheck{c, entry, nb, partMD5s, u.compression, claim})
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// deferredCheck is a published NAR whose data is still to be verified
// (Config.DeferVerification).
type deferredCheck struct {
	cache       *cache
	entry       *narinfoEntry
	data        *narBlob
	partMD5s    []string // base64 Content-MD5 of each of data's parts, in order
	compression string
	claim       *narInfoCreate
}

// VerifyDeferred runs the verification that Config.DeferVerification
// postponed, for every NAR completed since the last call, and returns how
// many it checked and one message per NAR that failed. A failed NAR's
// narinfo is removed from its cache (its data too, unless another narinfo
// uses it), so that nothing unverified stays published.
func (s *Server) VerifyDeferred() (checked int, failures []string) {
	s.mu.Lock()
	todo := s.deferred
	s.deferred = nil
	s.mu.Unlock()
	for _, d := range todo {
		err := checkPartMD5s(d.data.parts, d.partMD5s)
		if err == nil {
			rc := d.data.open()
			_, err = verifyNAR(rc, d.compression, d.claim)
			_ = rc.Close()
		}
		if err == nil {
			continue
		}
		failures = append(failures, fmt.Sprintf("%s: %v", d.claim.storePath(), err))
		s.mu.Lock()
		if d.cache.narinfos[d.entry.hash] == d.entry {
			delete(d.cache.narinfos, d.entry.hash)
		}
		if d.cache.nars[d.entry.narFile()] == d.data {
			delete(d.cache.nars, d.entry.narFile())
		}
		s.mu.Unlock()
	}
	return len(todo), failures
}

// checkPartMD5s compares each part's MD5 with the Content-MD5 announced
// for it (the check a PUT makes when verification is not deferred).
func checkPartMD5s(parts []blob, sums []string) error {
	if len(sums) != len(parts) {
		return fmt.Errorf("%d parts but %d announced MD5s", len(parts), len(sums))
	}
	for i, p := range parts {
		rc, err := p.open()
		if err != nil {
			return fmt.Errorf("reading part %d: %w", i+1, err)
		}
		h := md5.New() //nolint:gosec // S3's Content-MD5
		_, err = io.Copy(h, rc)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("reading part %d: %w", i+1, err)
		}
		if base64.StdEncoding.EncodeToString(h.Sum(nil)) != sums[i] {
			return fmt.Errorf("BadDigest: part %d's data does not have the Content-MD5 %s announced for it", i+1, sums[i])
		}
	}
	return nil
}

package cachixserver

import (
	"crypto/md5" //nolint:gosec // S3's Content-MD5 is MD5 by definition
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// maxParts is S3's limit on the number of parts of a multipart upload.
const maxParts = 10000

// upload is one multipart NAR upload in progress; guarded by Server.mu.
type upload struct {
	cache       string
	narID       string
	uploadID    string
	compression string // query value: "zst" or "xz"
	parts       map[int]*uploadedPart
	completing  bool
}

// uploadedPart is one accepted PUT.
type uploadedPart struct {
	data blob
	etag string
	// md5 is the Content-MD5 (base64) the data must have when its check
	// was deferred (Config.DeferVerification); empty otherwise.
	md5 string
}

// presign is one presigned part URL handed out; keyed by its signature.
type presign struct {
	narID    string
	uploadID string
	part     int
	md5      string // base64, exactly as the client sent it
}

// randomToken returns n random bytes in hex, for ids and signatures.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID in canonical lower-case form.
func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// handleMultipartCreate starts an upload: POST multipart-nar?compression=xz|zst.
func (s *Server) handleMultipartCreate(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permWrite)
	if c == nil {
		return
	}
	q := r.URL.Query()
	if !q.Has("compression") {
		s.reject(w, r, http.StatusBadRequest, "Missing compression method (query parameter compression=xz|zst)")
		return
	}
	comp := q.Get("compression")
	if comp != "xz" && comp != "zst" {
		s.reject(w, r, http.StatusBadRequest, "Wrong compression method: %s", comp)
		return
	}
	u := &upload{
		cache:       c.name,
		narID:       newUUID(),
		uploadID:    "2~" + randomToken(24),
		compression: comp,
		parts:       map[int]*uploadedPart{},
	}
	s.mu.Lock()
	s.uploads[u.narID] = u
	s.stats.UploadsStarted++
	s.mu.Unlock()
	writeJSON(w, map[string]string{"narId": u.narID, "uploadId": u.uploadID})
}

// lookupUpload finds the upload named by the path's narId and the
// uploadId query parameter, in cache c. It answers 400 itself on failure.
func (s *Server) lookupUpload(w http.ResponseWriter, r *http.Request, c *cache) *upload {
	narID := r.PathValue("narId")
	q := r.URL.Query()
	if !q.Has("uploadId") {
		s.reject(w, r, http.StatusBadRequest, "Missing query parameter uploadId")
		return nil
	}
	s.mu.Lock()
	u := s.uploads[narID]
	s.mu.Unlock()
	if u == nil || u.cache != c.name {
		s.reject(w, r, http.StatusBadRequest, "No such upload: narId %s", narID)
		return nil
	}
	if q.Get("uploadId") != u.uploadID {
		s.reject(w, r, http.StatusBadRequest, "uploadId does not belong to narId %s", narID)
		return nil
	}
	return u
}

// handlePresign hands out a presigned storage URL for one part:
// POST multipart-nar/{narId}?uploadId=&partNumber= with {"contentMD5": …}.
func (s *Server) handlePresign(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permWrite)
	if c == nil {
		return
	}
	u := s.lookupUpload(w, r, c)
	if u == nil {
		return
	}
	q := r.URL.Query()
	if !q.Has("partNumber") {
		s.reject(w, r, http.StatusBadRequest, "Missing query parameter partNumber")
		return
	}
	part, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || part < 1 || part > maxParts {
		s.reject(w, r, http.StatusBadRequest, "partNumber must be an integer from 1 to %d, got %q", maxParts, q.Get("partNumber"))
		return
	}
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body, "request body", "contentMD5")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	sum, err := o.str("contentMD5")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	if raw, err := base64.StdEncoding.Strict().DecodeString(sum); err != nil || len(raw) != md5.Size {
		s.reject(w, r, http.StatusBadRequest, "contentMD5 must be standard base64 of a 16-byte MD5, got %q", sum)
		return
	}
	sig := randomToken(32)
	s.mu.Lock()
	if s.uploads[u.narID] != u || u.completing {
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Upload %s is no longer open", u.narID)
		return
	}
	s.presigned[sig] = &presign{narID: u.narID, uploadID: u.uploadID, part: part, md5: sum}
	base := s.baseURL
	s.mu.Unlock()
	v := url.Values{}
	v.Set("partNumber", strconv.Itoa(part))
	v.Set("uploadId", u.uploadID)
	v.Set("X-Amz-Signature", sig)
	writeJSON(w, map[string]string{"uploadUrl": base + storagePrefix + u.narID + "?" + v.Encode()})
}

// handleStoragePut accepts one part at a presigned URL, checking it the
// way S3 does: the signature, Content-Length, Content-MD5 equal to the
// presigned MD5 and to the body's MD5, and no Authorization header.
func (s *Server) handleStoragePut(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.putsInFlight++
	s.stats.MaxConcurrentPuts = max(s.stats.MaxConcurrentPuts, s.putsInFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.putsInFlight--
		s.mu.Unlock()
	}()
	if d := s.cfg.StorageDelay; d > 0 {
		time.Sleep(d)
	}
	q := r.URL.Query()
	s.mu.Lock()
	ps := s.presigned[q.Get("X-Amz-Signature")]
	s.mu.Unlock()
	if ps == nil || ps.narID != r.PathValue("narId") || q.Get("uploadId") != ps.uploadID ||
		q.Get("partNumber") != strconv.Itoa(ps.part) {
		s.reject(w, r, http.StatusForbidden, "SignatureDoesNotMatch: the presigned URL is not valid")
		return
	}
	if r.Header.Get("Authorization") != "" {
		s.reject(w, r, http.StatusBadRequest, "InvalidArgument: Only one auth mechanism allowed; "+
			"a presigned URL must not be sent with an Authorization header")
		return
	}
	if r.ContentLength < 0 {
		s.reject(w, r, http.StatusLengthRequired, "MissingContentLength: You must provide the Content-Length HTTP header")
		return
	}
	if r.ContentLength == 0 {
		s.reject(w, r, http.StatusBadRequest, "EmptyPart: a part must not be empty")
		return
	}
	if got := r.Header.Get("Content-MD5"); got != ps.md5 {
		s.reject(w, r, http.StatusBadRequest, "SignatureDoesNotMatch: Content-MD5 header %q differs from the presigned MD5 %q", got, ps.md5)
		return
	}
	// With deferred verification the MD5 is checked by VerifyDeferred; the
	// ETag is then the MD5 the client announced (what it must be).
	deferred := s.cfg.DeferVerification
	var h hash.Hash = md5.New() //nolint:gosec // S3's Content-MD5
	if deferred {
		h = nil
	}
	data, err := s.blobs.write(r.Body, h, r.ContentLength)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "IncompleteBody: %v", err)
		return
	}
	var sum []byte
	if deferred {
		sum, err = base64.StdEncoding.DecodeString(ps.md5)
	} else {
		sum = h.Sum(nil)
	}
	if err != nil || base64.StdEncoding.EncodeToString(sum) != ps.md5 {
		data.remove()
		s.reject(w, r, http.StatusBadRequest, "BadDigest: The Content-MD5 you specified did not match what we received")
		return
	}
	if data.size() != r.ContentLength {
		data.remove()
		s.reject(w, r, http.StatusBadRequest, "IncompleteBody: got %d bytes, Content-Length said %d", data.size(), r.ContentLength)
		return
	}
	etag := `"` + hex.EncodeToString(sum) + `"`
	s.mu.Lock()
	u := s.uploads[ps.narID]
	if u == nil || u.uploadID != ps.uploadID || u.completing {
		s.mu.Unlock()
		data.remove()
		s.reject(w, r, http.StatusBadRequest, "NoSuchUpload: the upload was completed or aborted")
		return
	}
	if old := u.parts[ps.part]; old != nil {
		old.data.remove()
	}
	u.parts[ps.part] = &uploadedPart{data: data, etag: etag}
	if deferred {
		u.parts[ps.part].md5 = ps.md5
	}
	s.stats.PartsUploaded++
	s.stats.PutBytes += data.size()
	s.mu.Unlock()
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
}

// completedPart is one entry of the completion's "parts" list.
type completedPart struct {
	number int
	etag   string
}

// parseParts decodes "parts" strictly: a non-empty array of
// {partNumber, eTag} objects.
func parseParts(raw []byte) ([]completedPart, error) {
	if isNull(raw) {
		return nil, fmt.Errorf("field \"parts\": null (a part had no ETag?); a non-empty array is required")
	}
	var items []json.RawMessage
	if err := decodeValue(raw, &items); err != nil {
		return nil, fmt.Errorf("field \"parts\": %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("field \"parts\": empty array")
	}
	out := make([]completedPart, 0, len(items))
	for i, it := range items {
		o, err := decodeObject(it, fmt.Sprintf("parts[%d]", i), "partNumber", "eTag")
		if err != nil {
			return nil, err
		}
		n, err := o.integer("partNumber")
		if err != nil {
			return nil, fmt.Errorf("parts[%d]: %w", i, err)
		}
		etag, err := o.str("eTag")
		if err != nil {
			return nil, fmt.Errorf("parts[%d]: %w", i, err)
		}
		out = append(out, completedPart{number: int(n), etag: etag})
	}
	return out, nil
}

// checkParts compares the completion's part list with what was uploaded:
// sorted, contiguous from 1, every uploaded part listed, ETags verbatim,
// and every part but the last at least minSize bytes.
func checkParts(listed []completedPart, u *upload, minSize int64) error {
	for i, p := range listed {
		if p.number != i+1 {
			return fmt.Errorf("parts must be sorted and contiguous from 1: position %d has partNumber %d", i, p.number)
		}
		up := u.parts[p.number]
		if up == nil {
			return fmt.Errorf("InvalidPart: part %d was never uploaded", p.number)
		}
		if p.etag != up.etag {
			return fmt.Errorf("InvalidPart: part %d: ETag %q does not match %q (ETags must be sent verbatim, quotes included)",
				p.number, p.etag, up.etag)
		}
		if minSize > 0 && i < len(listed)-1 && up.data.size() < minSize {
			return fmt.Errorf("EntityTooSmall: part %d is %d bytes; every part but the last must be at least %d",
				p.number, up.data.size(), minSize)
		}
	}
	var extra []int
	for n := range u.parts {
		if n > len(listed) {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		sort.Ints(extra)
		return fmt.Errorf("parts %v were uploaded but not listed", extra)
	}
	return nil
}

// handleAbort drops an upload: POST multipart-nar/{narId}/abort?uploadId=.
func (s *Server) handleAbort(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permWrite)
	if c == nil {
		return
	}
	u := s.lookupUpload(w, r, c)
	if u == nil {
		return
	}
	s.mu.Lock()
	if s.uploads[u.narID] != u || u.completing {
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Upload %s cannot be aborted now (completed, aborted or completing)", u.narID)
		return
	}
	s.dropUploadLocked(u, true)
	s.stats.UploadsAborted++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// dropUploadLocked forgets an upload and its presigned URLs, deleting the
// part data unless it now belongs to a stored NAR. Caller holds s.mu.
func (s *Server) dropUploadLocked(u *upload, removeData bool) {
	delete(s.uploads, u.narID)
	for sig, ps := range s.presigned {
		if ps.narID == u.narID {
			delete(s.presigned, sig)
		}
	}
	if removeData {
		for _, p := range u.parts {
			p.data.remove()
		}
	}
}

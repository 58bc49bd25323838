package cachix

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/internal/parts"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// abortTimeout bounds the best-effort abort after a failed upload, which
// runs even when the caller's context is already cancelled.
const abortTimeout = 10 * time.Second

// createdUpload is the answer to "create a multipart upload" (§4.8 step 1).
type createdUpload struct {
	NarID    string `json:"narId"`
	UploadID string `json:"uploadId"`
}

// partURLRequest asks for a presigned URL for one part (§4.8 step 2).
type partURLRequest struct {
	ContentMD5 string `json:"contentMD5"`
}

// partURL is the presigned URL of one part.
type partURL struct {
	UploadURL string `json:"uploadUrl"`
}

// completedPart names one uploaded part in the completion request.
type completedPart struct {
	PartNumber int    `json:"partNumber"`
	ETag       string `json:"eTag"`
}

// completeRequest finishes the upload and creates the narinfo (§4.8 step 4).
type completeRequest struct {
	Parts         []completedPart `json:"parts"`
	NarInfoCreate narInfoCreate   `json:"narInfoCreate"`
}

// narInfoCreate is the narinfo cachix submits (§4.10). Field names and
// encodings are the Haskell record's; cSig is null, not omitted, without a
// signing key.
type narInfoCreate struct {
	CStoreHash   string   `json:"cStoreHash"`
	CStoreSuffix string   `json:"cStoreSuffix"`
	CNarHash     string   `json:"cNarHash"`
	CNarSize     uint64   `json:"cNarSize"`
	CFileHash    string   `json:"cFileHash"`
	CFileSize    uint64   `json:"cFileSize"`
	CReferences  []string `json:"cReferences"`
	CDeriver     string   `json:"cDeriver"`
	CSig         *string  `json:"cSig"`
}

// compressionQuery is the value of the compression query parameter: "zst"
// (not "zstd") or "xz" (§8.7).
func compressionQuery(m narstream.Method) (string, error) {
	switch m {
	case narstream.Zstd:
		return "zst", nil
	case narstream.XZ:
		return "xz", nil
	}
	return "", &cacheError{msg: fmt.Sprintf("Cachix stores NARs compressed with zstd or xz, not %q", m),
		sentinel: backend.ErrNotSupported}
}

// Upload streams the compressed NAR of info to Cachix's storage as a
// multipart upload (§4.8 steps 1–3): create, then for each part of
// ChunkSize bytes a presigned URL and a PUT with its MD5, up to
// ConcurrentChunks parts at once. The narinfo is not created until Commit.
// If anything fails after the upload was created, it is aborted (best
// effort) and the error returned; a NAR that disagrees with info is
// reported as a narstream.MismatchError and never completed.
func (b *Backend) Upload(ctx context.Context, info *store.PathInfo, c narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	sp, err := parseStorePath(info.Path)
	if err != nil {
		return nil, err
	}
	for _, r := range info.References {
		if _, err := parseStorePath(r); err != nil {
			return nil, fmt.Errorf("reference of %s: %w", info.Path, err)
		}
	}
	if info.NarSize == 0 {
		return nil, fmt.Errorf("refusing to push %s: the Nix database records a NAR size of 0", info.Path)
	}
	q, err := compressionQuery(c.Method)
	if err != nil {
		return nil, err
	}

	op := "starting the upload of " + info.Path + " to cache " + b.name
	r, err := b.c.api(ctx, http.MethodPost, b.cachePath("/multipart-nar"), url.Values{"compression": {q}}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		if r.status == http.StatusBadRequest {
			return nil, b.rejection("starting the upload", info.Path, op, r)
		}
		return nil, b.cacheStatusError(op, r, true)
	}
	var created createdUpload
	if err := decodeJSON(r, &created); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if created.NarID == "" || created.UploadID == "" {
		return nil, fmt.Errorf("%s: the answer lacks narId or uploadId", op)
	}

	pend, err := b.uploadParts(ctx, info, sp, created, stream)
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := b.abort(actx, created); aerr != nil {
			b.c.logger.log.Debug().Str("path", info.Path).Str("error", aerr.Error()).Msg("aborting the upload failed")
		}
		return nil, err
	}
	return pend, nil
}

// uploadParts runs the stream into the part uploader and checks the result.
func (b *Backend) uploadParts(ctx context.Context, info *store.PathInfo, sp store.Path, created createdUpload, stream backend.StreamFunc) (*pending, error) {
	u := b.newPartUploader(ctx, info.Path, created, b.partBufferSize(info.NarSize))
	defer u.Cancel()
	res, streamErr := stream(u.Context(), u)
	parts, total, partErr := u.finish(streamErr == nil)
	switch {
	case partErr != nil:
		return nil, partErr
	case streamErr != nil:
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(streamErr, ctxErr) {
			return nil, fmt.Errorf("uploading %s: %w", info.Path, ctxErr)
		}
		return nil, streamErr
	case len(parts) == 0:
		return nil, fmt.Errorf("uploading %s: the compressed NAR is empty", info.Path)
	case total != res.FileSize:
		return nil, fmt.Errorf("uploading %s: the stream reported %d compressed bytes but wrote %d",
			info.Path, res.FileSize, total)
	}
	if err := narstream.Check(info, res); err != nil {
		return nil, err
	}
	return &pending{b: b, info: info, sp: sp, upload: created, parts: parts, res: res}, nil
}

// cachePath is "/cache/NAME" + rest.
func (b *Backend) cachePath(rest string) string { return "/cache/" + escape(b.name) + rest }

// abort abandons a multipart upload (§4.8 step 5).
func (b *Backend) abort(ctx context.Context, up createdUpload) error {
	op := "aborting upload " + up.NarID + " in cache " + b.name
	r, err := b.c.api(ctx, http.MethodPost, b.cachePath("/multipart-nar/"+escape(up.NarID)+"/abort"),
		url.Values{"uploadId": {up.UploadID}}, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		return b.httpError(op, r)
	}
	return nil
}

// partUploader is the io.Writer handed to the NAR stream. It cuts the
// compressed bytes into consecutive parts of chunkSize bytes and uploads
// each full part in the background, at most concurrency at once. Memory is
// bounded by concurrency+1 part buffers: one filling, the others uploading.
type partUploader struct {
	b    *Backend
	path string
	up   createdUpload
	*parts.Uploads

	// Owned by the writing goroutine; next is the size of the next buffer.
	next  int
	buf   *[]byte
	n     int
	total uint64
}

// newPartUploader prepares the writer for one multipart upload whose
// first part buffer has first bytes (the others chunkSize).
func (b *Backend) newPartUploader(ctx context.Context, p string, up createdUpload, first int) *partUploader {
	return &partUploader{b: b, path: p, up: up, Uploads: parts.New(ctx, b.concurrency), next: first}
}

// Write fills the current part buffer and ships every full one.
func (u *partUploader) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := u.Err(); err != nil {
			return written, err
		}
		if u.buf == nil {
			buf, err := u.b.getBuffer(u.Context(), u.next)
			if err != nil {
				return written, err
			}
			u.buf, u.n, u.next = buf, 0, u.b.chunkSize
		}
		if u.n == len(*u.buf) {
			// A first buffer smaller than a part is full and more comes:
			// only the last part may be short, so it grows to a part.
			buf, err := u.b.getBuffer(u.Context(), u.b.chunkSize)
			if err != nil {
				return written, err
			}
			copy(*buf, (*u.buf)[:u.n])
			u.b.putBuffer(u.buf, true)
			u.buf = buf
		}
		c := copy((*u.buf)[u.n:], p)
		u.n += c
		u.total += uint64(c)
		written += c
		p = p[c:]
		if u.n == len(*u.buf) && u.n == u.b.chunkSize {
			if err := u.ship(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// ship hands the current buffer to a background upload once a slot is free.
func (u *partUploader) ship() error {
	buf, n := u.buf, u.n
	u.buf, u.n = nil, 0
	err := u.Go(func(ctx context.Context, num int) (string, error) {
		etag, reusable, err := u.b.uploadPart(ctx, u.path, u.up, num, (*buf)[:n])
		u.b.putBuffer(buf, reusable)
		return etag, err
	})
	if err != nil {
		u.b.putBuffer(buf, true)
	}
	return err
}

// finish ships the last, shorter part (only when the stream succeeded and
// it is not empty, so a length that is a multiple of the part size never
// yields an empty part), waits for every upload and returns the parts in
// order with the number of bytes written.
func (u *partUploader) finish(flush bool) ([]completedPart, uint64, error) {
	var shipErr error
	switch {
	case flush && u.n > 0:
		shipErr = u.ship()
	case u.buf != nil:
		u.b.putBuffer(u.buf, true)
		u.buf, u.n = nil, 0
	}
	done, err := u.Wait()
	if err == nil {
		err = shipErr
	}
	if err != nil {
		return nil, u.total, err
	}
	parts := make([]completedPart, len(done))
	for i, p := range done {
		parts[i] = completedPart{PartNumber: p.Number, ETag: p.ETag}
	}
	return parts, u.total, nil
}

// uploadPart sends one part (§4.8 steps 2–3): its MD5 to get a presigned
// URL, then the bytes to that URL. Each request is retried from the
// buffer. reusable reports whether no HTTP attempt can still be reading
// data, so that the buffer may be handed out again.
func (b *Backend) uploadPart(ctx context.Context, storePath string, up createdUpload, num int, data []byte) (etag string, reusable bool, err error) {
	sum := md5.Sum(data)
	contentMD5 := base64.StdEncoding.EncodeToString(sum[:])
	reusable = true
	// A 403 from the storage may be a presigned URL that expired while the
	// PUT was retried (or queued behind slow parts): the part is sent once
	// more with a fresh URL; a second 403 is final.
	for presigns := 1; ; presigns++ {
		target, err := b.presignPart(ctx, storePath, up, num, contentMD5)
		if err != nil {
			return "", reusable, err
		}
		var open atomic.Int64
		body := retryablehttp.ReaderFunc(func() (io.Reader, error) {
			open.Add(1)
			return &bodyReader{Reader: bytes.NewReader(data), closed: func() { open.Add(-1) }}, nil
		})
		h := http.Header{}
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-MD5", contentMD5)
		op := fmt.Sprintf("uploading part %d of %s to %s", num, storePath, target.Host)
		pr, err := b.c.do(ctx, http.MethodPut, target.String(), body, h)
		reusable = reusable && open.Load() == 0
		if err != nil {
			return "", reusable, fmt.Errorf("%s: %w", op, err)
		}
		if pr.status == http.StatusForbidden && presigns == 1 {
			continue
		}
		if !pr.ok() {
			if pr.status >= 400 && pr.status <= 499 && pr.status != http.StatusRequestTimeout && pr.status != http.StatusTooManyRequests {
				// The storage refused the part (a bad Content-MD5, a URL it
				// does not accept): sending the path again cannot help.
				herr := b.httpError(op, pr)
				return "", reusable, &cacheError{msg: fmt.Sprintf("the storage of cache %s rejected %s: %v", b.name, storePath, herr),
					sentinel: backend.ErrRejected, cause: herr}
			}
			return "", reusable, b.httpError(op, pr)
		}
		etag = pr.header.Get("ETag")
		if etag == "" {
			return "", reusable, fmt.Errorf("%s: the storage answered without an ETag header", op)
		}
		return etag, reusable, nil
	}
}

// presignPart asks Cachix for the presigned URL of part num (§4.8 step 2).
func (b *Backend) presignPart(ctx context.Context, storePath string, up createdUpload, num int, contentMD5 string) (*url.URL, error) {
	op := fmt.Sprintf("getting an upload URL for part %d of %s", num, storePath)
	r, err := b.c.api(ctx, http.MethodPost, b.cachePath("/multipart-nar/"+escape(up.NarID)),
		url.Values{"uploadId": {up.UploadID}, "partNumber": {fmt.Sprint(num)}},
		partURLRequest{ContentMD5: contentMD5})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		switch r.status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, b.unauthorized(b.httpError(op, r), true)
		case http.StatusBadRequest, http.StatusNotFound:
			return nil, b.rejection(fmt.Sprintf("getting an upload URL for part %d", num), storePath, op, r)
		}
		return nil, b.httpError(op, r)
	}
	var pu partURL
	if err := decodeJSON(r, &pu); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	target, err := b.c.base.Parse(pu.UploadURL)
	if err != nil || pu.UploadURL == "" || (target.Scheme != "http" && target.Scheme != "https") {
		return nil, fmt.Errorf("%s: the answer has no usable uploadUrl", op)
	}
	return target, nil
}

// pending is an upload whose narinfo is not created yet.
type pending struct {
	b      *Backend
	info   *store.PathInfo
	sp     store.Path
	upload createdUpload
	parts  []completedPart
	res    narstream.Result

	mu        sync.Mutex
	committed bool
	discarded bool
}

// Result is what was uploaded.
func (p *pending) Result() narstream.Result { return p.res }

// Commit completes the multipart upload and creates the narinfo in one
// call (§4.8 step 4). A 400 (e.g. a missing or bad signature on a
// self-signed cache) is a backend.ErrRejected error carrying the server's
// message. A failed Commit may be retried; it does not abort the upload.
func (p *pending) Commit(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.committed:
		return nil
	case p.discarded:
		return fmt.Errorf("publishing %s: the upload was discarded", p.info.Path)
	}
	if p.res.NarSize == 0 {
		return fmt.Errorf("refusing to publish %s with a NAR size of 0", p.info.Path)
	}
	b := p.b
	body := completeRequest{Parts: p.parts, NarInfoCreate: b.narInfoCreate(p.info, p.sp, p.res)}
	op := "publishing " + p.info.Path + " in cache " + b.name
	r, err := b.c.api(ctx, http.MethodPost, b.cachePath("/multipart-nar/"+escape(p.upload.NarID)+"/complete"),
		url.Values{"uploadId": {p.upload.UploadID}}, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		switch {
		case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
			return b.unauthorized(b.httpError(op, r), true)
		case rejected(r.status) && r.attempts > 1 && p.published(ctx):
			// An earlier attempt completed it and its answer was lost; the
			// retry was refused because the upload is done.
		case rejected(r.status):
			return b.rejection("completing the upload", p.info.Path, op, r)
		default:
			return b.httpError(op, r)
		}
	}
	p.committed = true
	return nil
}

// published asks the cache whether it has the path's narinfo (false when
// it cannot say).
func (p *pending) published(ctx context.Context) bool {
	missing, err := p.b.Missing(ctx, []string{p.info.Path})
	return err == nil && !missing[p.info.Path]
}

// rejected reports the final client errors of the completion call other
// than authorisation: the server refused what was sent (400, a bad
// signature), or no longer knows the upload (404), and sending it again
// cannot help.
func rejected(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status <= 499
}

// rejection is the permanent error (backend.ErrRejected) of an upload
// call (op, at step) that Cachix refused, with the server's message: a
// 400 from creating the upload, a 400 or 404 from presigning a part, a 4xx
// from completing it is not sent again (§5.9b), nor is a 4xx from the
// storage PUT (see uploadPart: a 403 gets one fresh URL first).
func (b *Backend) rejection(step, path, op string, r *response) error {
	herr := b.httpError(op, r)
	msg := fmt.Sprintf("cache %s rejected %s (%s): HTTP %d", b.name, path, step, r.status)
	if t := http.StatusText(r.status); t != "" {
		msg += " " + t
	}
	if herr.Message != "" {
		msg += ": " + herr.Message
	}
	return &cacheError{msg: msg, sentinel: backend.ErrRejected, cause: herr}
}

// Discard aborts the multipart upload (best effort; nothing to do after a
// successful Commit).
func (p *pending) Discard(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.committed || p.discarded {
		return nil
	}
	p.discarded = true
	return p.b.abort(ctx, p.upload)
}

// narInfoCreate builds the narinfo exactly as cachix does (§4.10, §5.6):
// hash and name from the path's base name, NAR hash in nix-base32 with its
// prefix, file hash in bare hex, sorted base-name references, the
// deriver's base name or "unknown-deriver", and a bare base64 signature of
// the "1;…" fingerprint when there is a signing key (null otherwise).
func (b *Backend) narInfoCreate(info *store.PathInfo, sp store.Path, res narstream.Result) narInfoCreate {
	refs := info.ReferenceNames()
	if refs == nil {
		refs = []string{}
	}
	deriver := unknownDeriver
	if !b.omitDeriver && info.Deriver != "" {
		deriver = path.Base(info.Deriver)
	}
	var sig *string
	if b.key != nil {
		signed := *info
		signed.NarHash, signed.NarSize = res.NarHash, res.NarSize
		s := b.key.SignBase64(signed.Fingerprint())
		sig = &s
	}
	return narInfoCreate{
		CStoreHash:   sp.Hash(),
		CStoreSuffix: sp.Name,
		CNarHash:     res.NarHash.Format(nixhash.NixBase32, true),
		CNarSize:     res.NarSize,
		CFileHash:    res.FileHashHex(),
		CFileSize:    res.FileSize,
		CReferences:  refs,
		CDeriver:     deriver,
		CSig:         sig,
	}
}

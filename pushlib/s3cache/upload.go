package s3cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// abortTimeout bounds the best-effort abort of a failed multipart upload,
// which runs even when the push is being cancelled.
const abortTimeout = 10 * time.Second

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// Upload puts the compressed NAR into the bucket, at the key named by the
// hash of its bytes, and returns once the object is complete; the narinfo
// waits for Commit.
//
// The key is only known once the NAR is compressed, and a multipart upload
// needs its key first. So the NAR is compressed into one part buffer: if it
// fits (most do), that buffer is the object, sent in one PUT. If it does
// not, the first pass goes on hashing without keeping anything, and a
// second pass streams the NAR again into a multipart upload at the key the
// first pass found, a bounded number of parts in flight; it must produce
// the same bytes. A NAR already in the bucket with that size (another
// writer's, or a killed push's) is not uploaded again.
func (c *Cache) Upload(ctx context.Context, info *store.PathInfo, comp narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	c.cleanup.Do(func() { c.abortStale(ctx) })
	first := &firstPass{c: c, ctx: ctx}
	res, err := stream(ctx, first)
	defer first.release()
	if err != nil {
		return nil, err
	}
	if first.written != res.FileSize {
		return nil, fmt.Errorf("uploading %s: the stream reported %d compressed bytes but wrote %d", info.Path, res.FileSize, first.written)
	}
	if res.FileSize == 0 {
		return nil, fmt.Errorf("uploading %s: the compressed NAR is empty", info.Path)
	}
	name := binarycache.NarName(res, comp)
	key := c.key(name)
	p := &pending{c: c, info: info, res: res, url: name}
	if !first.overflow {
		if err := c.putPart(ctx, key, first.data(), hex.EncodeToString(res.FileHash)); err != nil {
			first.failed = true
			return nil, c.classify(err, "uploading "+key)
		}
		return p, nil
	}
	first.release()
	if res.FileSize > maxParts*uint64(c.partSize) {
		return nil, &Error{msg: fmt.Sprintf("%s compresses to %d bytes, more than S3's %d parts of %d bytes: raise buffer-size in the URL",
			info.Path, res.FileSize, maxParts, c.partSize), sentinel: backend.ErrRejected}
	}
	if ok, err := c.exists(ctx, key, res.FileSize); err != nil {
		return nil, err
	} else if ok {
		return p, nil
	}
	if err := c.multipart(ctx, info, key, res, stream); err != nil {
		return nil, err
	}
	return p, nil
}

// putPart sends a whole NAR that fits in one part.
func (c *Cache) putPart(ctx context.Context, key string, data []byte, sha string) error {
	_, err := c.core.PutObject(ctx, c.loc.Bucket, key, newBytesReader(data), int64(len(data)), "", sha,
		minio.PutObjectOptions{ContentType: narType, DisableContentSha256: true})
	return err
}

// exists reports whether key is a complete object of size bytes.
func (c *Cache) exists(ctx context.Context, key string, size uint64) (bool, error) {
	st, err := c.core.StatObject(ctx, c.loc.Bucket, key, minio.StatObjectOptions{})
	switch {
	case err == nil:
		return st.Size == int64(size), nil
	case code(err) == "NoSuchKey":
		return false, nil
	}
	return false, c.classify(err, "checking "+key)
}

// multipart streams the NAR a second time into a multipart upload at key.
// Any failure aborts the upload. Once complete, older unfinished uploads
// of the same key are aborted: they hold the same bytes (the key is their
// hash) and are either abandoned by a killed push or about to find the
// object there.
func (c *Cache) multipart(ctx context.Context, info *store.PathInfo, key string, want narstream.Result, stream backend.StreamFunc) error {
	id, err := c.core.NewMultipartUpload(ctx, c.loc.Bucket, key, minio.PutObjectOptions{ContentType: narType})
	if err != nil {
		return c.classify(err, "starting the upload of "+key)
	}
	w := newPartWriter(ctx, c, key, id)
	res, err := stream(w.ctx, w)
	parts, total, werr := w.finish(err == nil)
	switch {
	case werr != nil:
		err = werr
	case err != nil:
	case total != want.FileSize || !bytes.Equal(res.FileHash, want.FileHash):
		err = fmt.Errorf("uploading %s: compressing it twice gave different bytes (%d, then %d bytes); nothing was published", info.Path, want.FileSize, total)
	}
	var older []minio.ObjectMultipartInfo
	if err == nil {
		older = c.olderUploads(ctx, key, id)
		_, err = c.core.CompleteMultipartUpload(ctx, c.loc.Bucket, key, id, parts, minio.PutObjectOptions{})
	}
	if err != nil {
		c.abort(ctx, key, id)
		if code(err) == "NoSuchUpload" {
			// Another writer completed this NAR and aborted our upload as
			// older than its own: the object it wrote is ours, byte for byte.
			if ok, _ := c.exists(ctx, key, want.FileSize); ok {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.classify(err, "uploading "+key)
	}
	for _, u := range older {
		c.abort(ctx, u.Key, u.UploadID)
	}
	return nil
}

// olderUploads lists the unfinished uploads of key started before ours.
func (c *Cache) olderUploads(ctx context.Context, key, ours string) []minio.ObjectMultipartInfo {
	res, err := c.core.ListMultipartUploads(ctx, c.loc.Bucket, key, "", "", "", 1000)
	if err != nil {
		c.debug("listing the uploads of "+key, err)
		return nil
	}
	var mine time.Time
	for _, u := range res.Uploads {
		if u.UploadID == ours {
			mine = u.Initiated
		}
	}
	var older []minio.ObjectMultipartInfo
	for _, u := range res.Uploads {
		if u.Key == key && u.UploadID != ours && !mine.IsZero() && !u.Initiated.After(mine) {
			older = append(older, u)
		}
	}
	return older
}

// abort abandons a multipart upload, best effort, even after a cancel.
func (c *Cache) abort(ctx context.Context, key, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := c.core.AbortMultipartUpload(actx, c.loc.Bucket, key, id); err != nil && code(err) != "NoSuchUpload" {
		c.debug("aborting the upload of "+key, err)
	}
}

// abortStale aborts the unfinished NAR uploads of this cache started more
// than StaleUploadAge ago: a killed push leaves them behind and they cost
// storage. Younger ones may be another machine's upload in progress.
//
// The listing is of the whole bucket, filtered here: MinIO lists uploads
// only for an empty prefix or a whole key, not for a key prefix.
func (c *Cache) abortStale(ctx context.Context) {
	keyMarker, idMarker := "", ""
	for range 100 { // at most 100,000 uploads per push
		res, err := c.core.ListMultipartUploads(ctx, c.loc.Bucket, "", keyMarker, idMarker, "", 1000)
		if err != nil {
			c.debug("listing unfinished uploads", err)
			return
		}
		for _, u := range res.Uploads {
			name, ours := strings.CutPrefix(u.Key, c.loc.Prefix)
			if ours && isNarName(name) && time.Since(u.Initiated) > c.opts.StaleUploadAge {
				c.abort(ctx, u.Key, u.UploadID)
			}
		}
		if !res.IsTruncated || res.NextKeyMarker == "" {
			return
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// isNarName reports whether name is a NAR this tool (or Nix) names
// "nar/<hash>.nar[.ext]", so that cleaning up never touches other objects.
func isNarName(name string) bool {
	rest, ok := strings.CutPrefix(name, "nar/")
	if !ok {
		return false
	}
	h, ext, ok := strings.Cut(rest, ".")
	return ok && len(h) >= 32 && !strings.Contains(h, "/") && (ext == "nar" || strings.HasPrefix(ext, "nar."))
}

// debug logs a best-effort failure.
func (c *Cache) debug(what string, err error) {
	if c.opts.Logger != nil {
		c.opts.Logger.Debug().Str("error", err.Error()).Msg(what)
	}
}

// acquire takes one part buffer from the budget shared by every upload.
func (c *Cache) acquire(ctx context.Context) (*[]byte, error) {
	select {
	case c.buffers <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.pool().Get().(*[]byte), nil
}

// releaseBuffer returns a part buffer to the budget. reusable is false
// after a failed request: net/http may still be reading the body from a
// connection it is closing, so such a buffer is left to the garbage
// collector instead of being filled again.
func (c *Cache) releaseBuffer(buf *[]byte, reusable bool) {
	if reusable {
		c.pool().Put(buf)
	}
	<-c.buffers
}

// pool holds the part buffers for reuse.
func (c *Cache) pool() *sync.Pool {
	c.poolOnce.Do(func() {
		size := c.partSize
		c.bufPool.New = func() any { b := make([]byte, size); return &b }
	})
	return &c.bufPool
}

// firstPass is the writer of the first compression: it keeps the bytes in
// one part buffer, taken on the first write (when the stream already holds
// a core, so that a waiting upload never holds a buffer), and once they
// overflow it, it drops them and only counts.
type firstPass struct {
	c        *Cache
	ctx      context.Context
	buf      *[]byte
	n        int
	written  uint64
	overflow bool
	// failed: the PUT of the buffer failed, do not reuse it.
	failed bool
}

func (f *firstPass) Write(p []byte) (int, error) {
	f.written += uint64(len(p))
	if f.overflow {
		return len(p), nil
	}
	if f.buf == nil {
		buf, err := f.c.acquire(f.ctx)
		if err != nil {
			return 0, err
		}
		f.buf = buf
	}
	if f.n+len(p) > len(*f.buf) {
		f.overflow = true
		f.release()
		return len(p), nil
	}
	f.n += copy((*f.buf)[f.n:], p)
	return len(p), nil
}

// data is what the buffer holds.
func (f *firstPass) data() []byte { return (*f.buf)[:f.n] }

// release gives the buffer back (idempotent).
func (f *firstPass) release() {
	if f.buf != nil {
		f.c.releaseBuffer(f.buf, !f.failed)
		f.buf, f.n = nil, 0
	}
}

// partWriter is the writer of the second pass: it cuts the compressed
// bytes into parts and uploads each full one in the background, at most
// PartConcurrency at once per NAR, each from a buffer of the shared budget.
type partWriter struct {
	c      *Cache
	key    string
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	err   error
	parts []minio.CompletePart

	// Owned by the writing goroutine.
	buf    *[]byte
	n      int
	number int
	total  uint64
}

func newPartWriter(ctx context.Context, c *Cache, key, id string) *partWriter {
	ctx, cancel := context.WithCancel(ctx)
	return &partWriter{c: c, key: key, id: id, ctx: ctx, cancel: cancel, slots: make(chan struct{}, c.opts.PartConcurrency)}
}

func (w *partWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := w.failure(); err != nil {
			return written, err
		}
		if w.buf == nil {
			buf, err := w.c.acquire(w.ctx)
			if err != nil {
				return written, err
			}
			w.buf, w.n = buf, 0
		}
		n := copy((*w.buf)[w.n:], p)
		w.n += n
		w.total += uint64(n)
		written += n
		p = p[n:]
		if w.n == len(*w.buf) {
			if err := w.ship(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// failure is the first part's error, or the context's.
func (w *partWriter) failure() error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.ctx.Err()
}

// ship uploads the current buffer in the background once a slot is free.
func (w *partWriter) ship() error {
	buf, n := w.buf, w.n
	w.buf, w.n = nil, 0
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		w.c.releaseBuffer(buf, true)
		if err := w.failure(); err != nil {
			return err
		}
		return w.ctx.Err()
	}
	w.number++
	num := w.number
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.slots }()
		data := (*buf)[:n]
		sum := sha256.Sum256(data)
		part, err := w.c.core.PutObjectPart(w.ctx, w.c.loc.Bucket, w.key, w.id, num, newBytesReader(data), int64(n),
			minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true})
		w.c.releaseBuffer(buf, err == nil)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			if w.err == nil {
				w.err = err
				w.cancel()
			}
			return
		}
		w.parts = append(w.parts, minio.CompletePart{PartNumber: num, ETag: part.ETag})
	}()
	return nil
}

// finish ships the last, shorter part (only when the stream succeeded and
// it is not empty), waits for every part and returns them in order with
// the number of bytes written.
func (w *partWriter) finish(flush bool) ([]minio.CompletePart, uint64, error) {
	defer w.cancel()
	var shipErr error
	switch {
	case flush && w.n > 0:
		shipErr = w.ship()
	case w.buf != nil:
		w.c.releaseBuffer(w.buf, true)
		w.buf, w.n = nil, 0
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.total, w.err
	}
	if shipErr != nil {
		return nil, w.total, shipErr
	}
	parts := append([]minio.CompletePart(nil), w.parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	return parts, w.total, nil
}

// pending is a NAR in the bucket whose narinfo is not written yet.
type pending struct {
	c    *Cache
	info *store.PathInfo
	res  narstream.Result
	url  string
}

func (p *pending) Result() narstream.Result { return p.res }

// Commit writes the narinfo: the NAR is complete (Upload returned), and
// the pipeline has published every reference.
func (p *pending) Commit(ctx context.Context) error {
	key := p.c.key(binarycache.NarinfoName(p.info.Path))
	text := p.c.signer.Narinfo(p.info, p.res, p.url)
	if err := p.c.put(ctx, key, []byte(text), narinfoType); err != nil {
		return p.c.classify(err, "writing "+key)
	}
	return nil
}

// Discard leaves the NAR: it is named by its content, harmless without a
// narinfo, and may be another path's or another writer's.
func (p *pending) Discard(ctx context.Context) error { return nil }

// sha256Hex is the hex SHA-256 of data, which signs a PUT's payload.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// newBytesReader is a seekable body, so that minio-go can retry the request.
func newBytesReader(data []byte) *bytes.Reader { return bytes.NewReader(data) }

package s3cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/internal/parts"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// abortTimeout bounds the best-effort clean-up after a failed upload,
// which runs even when the push is being cancelled.
const abortTimeout = 10 * time.Second

// stagingDir holds the multipart uploads of NARs larger than one part,
// under the cache's prefix, until they are copied to their content
// address. Nix ignores it.
const stagingDir = "staging/"

// Upload puts the compressed NAR into the bucket at nar/<hash of its
// bytes>.<ext> and returns once that object is complete; the narinfo
// waits for Commit.
//
// The NAR is compressed once, into one part buffer: if it fits (most do),
// that buffer is the object, sent in one PUT to its content address. If it
// does not, the parts go, a bounded number in flight, into a multipart
// upload at a staging key (the content address is only known at the end),
// which is then copied inside the service to the content address and
// deleted. A NAR already at its address is not copied again.
func (c *Cache) Upload(ctx context.Context, info *store.PathInfo, comp narstream.Compression, stream backend.StreamFunc) (backend.Pending, error) {
	c.cleanup.Do(func() { c.cleanStaging(ctx) })
	w := newNarWriter(ctx, c, info, comp)
	res, err := stream(w.Context(), w)
	switch {
	case err != nil:
	case w.written != res.FileSize:
		err = fmt.Errorf("uploading %s: the stream reported %d compressed bytes but wrote %d", info.Path, res.FileSize, w.written)
	case res.FileSize == 0:
		err = fmt.Errorf("uploading %s: the compressed NAR is empty", info.Path)
	}
	if err != nil {
		partErr := w.Failed()
		w.abandon()
		if partErr != nil && ctx.Err() == nil {
			// The stream failed because a part did: that is the cause.
			return nil, c.classify(partErr, "uploading "+info.Path)
		}
		return nil, err
	}
	name := binarycache.NarName(res, comp)
	key := c.key(name)
	p := &pending{c: c, info: info, res: res, url: name}
	if w.id == "" {
		err := c.putPart(ctx, key, (*w.buf)[:w.n], res.FileHashHex())
		w.releaseBuffer(err == nil)
		w.Cancel() // no parts: end the uploads' context
		if err != nil {
			return nil, c.classify(err, "uploading "+key)
		}
		return p, nil
	}
	if err := w.complete(res.FileSize); err != nil {
		return nil, err
	}
	defer c.remove(ctx, w.key)
	ok, err := c.exists(ctx, key, res.FileSize)
	if err != nil {
		return nil, err
	}
	if !ok {
		// Copied with its content type; ComposeObject copies in parts
		// what is larger than a single copy may be (5 GiB).
		err := c.do(withServerWork(ctx, res.FileSize), func(ctx context.Context) error {
			_, err := c.core.ComposeObject(ctx,
				minio.CopyDestOptions{Bucket: c.loc.Bucket, Object: key, ReplaceMetadata: true, UserMetadata: map[string]string{"Content-Type": narType}},
				minio.CopySrcOptions{Bucket: c.loc.Bucket, Object: w.key})
			return err
		})
		if err != nil {
			return nil, c.classify(err, "copying "+w.key+" to "+key)
		}
	}
	return p, nil
}

// putPart sends a whole NAR that fits in one part.
func (c *Cache) putPart(ctx context.Context, key string, data []byte, sha string) error {
	return c.do(ctx, func(ctx context.Context) error {
		_, err := c.core.PutObject(ctx, c.loc.Bucket, key, newBytesReader(data), int64(len(data)), "", sha,
			minio.PutObjectOptions{ContentType: narType, DisableContentSha256: true})
		return err
	})
}

// exists reports whether key is a complete object of size bytes.
func (c *Cache) exists(ctx context.Context, key string, size uint64) (bool, error) {
	var st minio.ObjectInfo
	err := c.do(ctx, func(ctx context.Context) (err error) {
		st, err = c.core.StatObject(ctx, c.loc.Bucket, key, minio.StatObjectOptions{})
		return err
	})
	switch {
	case err == nil:
		return st.Size == int64(size), nil
	case code(err) == "NoSuchKey":
		return false, nil
	}
	return false, c.classify(err, "checking "+key)
}

// remove deletes an object, best effort, even after a cancel.
func (c *Cache) remove(ctx context.Context, key string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := c.core.RemoveObject(rctx, c.loc.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		c.debug("removing "+key, err)
	}
}

// abort abandons a multipart upload, best effort, even after a cancel.
func (c *Cache) abort(ctx context.Context, key, id string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := c.core.AbortMultipartUpload(actx, c.loc.Bucket, key, id); err != nil && code(err) != "NoSuchUpload" {
		c.debug("aborting the upload of "+key, err)
	}
}

// machineTag names this machine in staging keys: a hash of its machine
// id and host name (containers that share a machine id have their own
// host names), so that a later push can tell its own dead uploads from
// another machine's live ones without publishing either.
var machineTag = sync.OnceValue(func() string {
	id, _ := os.ReadFile("/etc/machine-id")
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(id)) + "\n" + host))
	return hex.EncodeToString(sum[:4])
})

// stagingName is where this process stages a NAR: staging/<NAR hash>-
// <machine>-<pid>-<random>.<ext>.
func stagingName(info *store.PathInfo, comp narstream.Compression) string {
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	return fmt.Sprintf("%s%s-%s-%d-%x.%s", stagingDir, info.NarHash.Format(nixhash.NixBase32, false), machineTag(), os.Getpid(), r, comp.FileExt())
}

// abandonedStaging reports whether a staging name belongs to a process of
// this machine that is no longer running.
func abandonedStaging(name string) bool {
	rest, ok := strings.CutPrefix(name, stagingDir)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 4 || parts[1] != machineTag() {
		return false
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// cleanStaging removes what killed pushes left: unfinished uploads and
// staging objects of this machine's processes that are gone, and any of
// them (and unfinished uploads at NAR keys, as Nix's multipart uploads
// leave) older than StaleUploadAge, since younger ones may be another
// machine's push in progress. Best effort; once per push, on its first
// upload.
//
// Uploads are listed for the whole bucket and filtered here: MinIO lists
// them only for an empty prefix or a whole key, not for a key prefix.
func (c *Cache) cleanStaging(ctx context.Context) {
	stale := func(name string, started time.Time) bool {
		return abandonedStaging(name) ||
			(strings.HasPrefix(name, stagingDir) || isNarName(name)) && time.Since(started) > c.opts.StaleUploadAge
	}
	keyMarker, idMarker := "", ""
	for range 100 { // at most 100,000 uploads per push
		var res minio.ListMultipartUploadsResult
		err := c.do(ctx, func(ctx context.Context) (err error) {
			res, err = c.core.ListMultipartUploads(ctx, c.loc.Bucket, "", keyMarker, idMarker, "", 1000)
			return err
		})
		if err != nil {
			c.debug("listing unfinished uploads", err)
			break
		}
		for _, u := range res.Uploads {
			if name, ours := strings.CutPrefix(u.Key, c.loc.Prefix); ours && stale(name, u.Initiated) {
				c.abort(ctx, u.Key, u.UploadID)
			}
		}
		if !res.IsTruncated || res.NextKeyMarker == "" {
			break
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	lctx, done := c.bounded(ctx)
	defer done(nil)
	for obj := range c.core.ListObjectsIter(lctx, c.loc.Bucket, minio.ListObjectsOptions{Prefix: c.key(stagingDir), Recursive: true}) {
		if obj.Err != nil {
			c.debug("listing "+c.key(stagingDir), done(obj.Err))
			return
		}
		if stale(strings.TrimPrefix(obj.Key, c.loc.Prefix), obj.LastModified) {
			c.remove(ctx, obj.Key)
		}
	}
}

// isNarName reports whether name is a NAR as this tool or Nix name them,
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

// narWriter is the writer the NAR stream writes the compressed bytes
// into. It fills one part buffer, taken on the first write (when the
// stream already holds a core, so that a waiting upload never holds a
// buffer); when more bytes come than a part holds, it starts a multipart
// upload at a staging key and from then on uploads each full part in the
// background, at most PartConcurrency at once, each from a buffer of the
// shared budget.
type narWriter struct {
	c    *Cache
	info *store.PathInfo
	comp narstream.Compression
	*parts.Uploads

	// Owned by the writing goroutine.
	buf     *[]byte
	n       int
	written uint64
	key, id string // the staging upload, once started
}

func newNarWriter(ctx context.Context, c *Cache, info *store.PathInfo, comp narstream.Compression) *narWriter {
	return &narWriter{c: c, info: info, comp: comp, Uploads: parts.New(ctx, c.opts.PartConcurrency)}
}

func (w *narWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := w.Err(); err != nil {
			return written, err
		}
		if w.buf != nil && w.n == len(*w.buf) {
			// A full buffer and more to come: it is a part.
			if err := w.ship(); err != nil {
				return written, err
			}
		}
		if w.buf == nil {
			buf, err := w.c.acquire(w.Context())
			if err != nil {
				return written, err
			}
			w.buf, w.n = buf, 0
		}
		n := copy((*w.buf)[w.n:], p)
		w.n += n
		w.written += uint64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// ship uploads the current buffer as the next part, in the background
// once a slot is free, starting the staging upload first if need be.
func (w *narWriter) ship() error {
	if w.Number() == maxParts {
		err := &Error{msg: fmt.Sprintf("%s compresses to more than S3's %d parts of %d bytes: raise buffer-size in the URL",
			w.info.Path, maxParts, w.c.partSize), sentinel: backend.ErrRejected}
		w.Fail(err)
		return err
	}
	if w.id == "" {
		key := w.c.key(stagingName(w.info, w.comp))
		var id string
		err := w.c.do(w.Context(), func(ctx context.Context) (err error) {
			id, err = w.c.core.NewMultipartUpload(ctx, w.c.loc.Bucket, key, minio.PutObjectOptions{ContentType: narType})
			return err
		})
		if err != nil {
			w.Fail(err)
			return err
		}
		w.key, w.id = key, id
	}
	buf, n := w.buf, w.n
	w.buf, w.n = nil, 0
	err := w.Go(func(ctx context.Context, num int) (string, error) {
		data := (*buf)[:n]
		sum := sha256.Sum256(data)
		var part minio.ObjectPart
		err := w.c.do(ctx, func(ctx context.Context) (err error) {
			part, err = w.c.core.PutObjectPart(ctx, w.c.loc.Bucket, w.key, w.id, num, newBytesReader(data), int64(n),
				minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true})
			return err
		})
		w.c.releaseBuffer(buf, err == nil)
		return part.ETag, err
	})
	if err != nil {
		w.c.releaseBuffer(buf, true)
	}
	return err
}

// releaseBuffer gives the unshipped buffer back.
func (w *narWriter) releaseBuffer(reusable bool) {
	if w.buf != nil {
		w.c.releaseBuffer(w.buf, reusable)
		w.buf, w.n = nil, 0
	}
}

// complete ships the last part, waits for every part and completes the
// staging upload of a NAR file of size bytes; on failure it cleans up and
// returns the error.
func (w *narWriter) complete(size uint64) error {
	var err error
	if w.buf != nil && w.n > 0 {
		err = w.ship()
	}
	done, waitErr := w.Wait()
	if err == nil {
		err = waitErr
	}
	if err == nil {
		err = w.Context().Err()
	}
	if err == nil {
		completed := make([]minio.CompletePart, len(done))
		for i, p := range done {
			completed[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
		}
		err = w.c.do(withServerWork(w.Context(), size), func(ctx context.Context) error {
			_, err := w.c.core.CompleteMultipartUpload(ctx, w.c.loc.Bucket, w.key, w.id, completed, minio.PutObjectOptions{})
			return err
		})
	}
	if err != nil {
		w.abandon()
		if ctxErr := w.Context().Err(); ctxErr != nil && w.Failed() == nil {
			return ctxErr
		}
		return w.c.classify(err, "uploading "+w.info.Path)
	}
	w.Cancel()
	return nil
}

// abandon stops the parts in flight, frees the buffers and aborts the
// staging upload.
func (w *narWriter) abandon() {
	w.Cancel()
	w.releaseBuffer(true)
	if w.id != "" {
		w.c.abort(w.Context(), w.key, w.id)
	}
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

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

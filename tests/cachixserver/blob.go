package cachixserver

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// blob is one stored byte string: an uploaded part, in memory or in a file.
type blob interface {
	open() (io.ReadCloser, error)
	size() int64
	remove()
}

// memBlob keeps the bytes in memory.
type memBlob []byte

// open reads the bytes.
func (b memBlob) open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

// size is the byte count.
func (b memBlob) size() int64 { return int64(len(b)) }

// remove lets the garbage collector have the bytes.
func (memBlob) remove() {}

// fileBlob keeps the bytes in a file under the data directory, so that
// memory stays bounded when large closures are pushed.
type fileBlob struct {
	path string
	n    int64
}

// open reads the file.
func (b *fileBlob) open() (io.ReadCloser, error) {
	f, err := os.Open(b.path)
	if err != nil {
		return nil, fmt.Errorf("opening stored part: %w", err)
	}
	return f, nil
}

// size is the byte count.
func (b *fileBlob) size() int64 { return b.n }

// remove deletes the file.
func (b *fileBlob) remove() { _ = os.Remove(b.path) }

// blobStore creates blobs in memory or, with a data directory, on disk.
type blobStore struct {
	dir string // "" means memory
}

// newBlobStore creates a fresh directory inside dataDir (if given) that
// Close removes again.
func newBlobStore(dataDir string) (*blobStore, error) {
	if dataDir == "" {
		return &blobStore{}, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dataDir, err)
	}
	dir, err := os.MkdirTemp(dataDir, "cachixserver-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory in %s: %w", dataDir, err)
	}
	return &blobStore{dir: dir}, nil
}

// write stores everything r yields (also fed to w, e.g. a hash, unless w
// is nil) as a blob; sizeHint, if known, sizes the in-memory buffer once.
func (bs *blobStore) write(r io.Reader, w io.Writer, sizeHint int64) (blob, error) {
	src := r
	if w != nil {
		src = io.TeeReader(r, w)
	}
	if bs.dir == "" {
		var buf bytes.Buffer
		if sizeHint > 0 && sizeHint <= 1<<30 {
			buf.Grow(int(sizeHint) + bytes.MinRead) // one allocation, no copies while growing
		}
		if _, err := io.Copy(&buf, src); err != nil {
			return nil, fmt.Errorf("reading part: %w", err)
		}
		return memBlob(buf.Bytes()), nil
	}
	f, err := os.CreateTemp(bs.dir, "part-*")
	if err != nil {
		return nil, fmt.Errorf("creating part file: %w", err)
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("storing part: %w", err)
	}
	return &fileBlob{path: f.Name(), n: n}, nil
}

// close removes the data directory.
func (bs *blobStore) close() {
	if bs.dir != "" {
		_ = os.RemoveAll(bs.dir)
	}
}

// narBlob is a stored compressed NAR: the ordered parts of its upload,
// never copied.
type narBlob struct {
	parts []blob
	n     int64
}

// newNarBlob joins parts in order.
func newNarBlob(parts []blob) *narBlob {
	nb := &narBlob{parts: parts}
	for _, p := range parts {
		nb.n += p.size()
	}
	return nb
}

// open reads the parts one after another, opening each only when reached.
func (nb *narBlob) open() io.ReadCloser {
	return &chainReader{parts: nb.parts}
}

// chainReader concatenates blobs, holding at most one open at a time.
type chainReader struct {
	parts []blob
	cur   io.ReadCloser
}

// Read continues with the next part when the current one ends.
func (c *chainReader) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.parts) == 0 {
				return 0, io.EOF
			}
			rc, err := c.parts[0].open()
			if err != nil {
				return 0, err
			}
			c.cur, c.parts = rc, c.parts[1:]
		}
		n, err := c.cur.Read(p)
		if err == io.EOF {
			_ = c.cur.Close()
			c.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Close releases the part being read.
func (c *chainReader) Close() error {
	if c.cur != nil {
		err := c.cur.Close()
		c.cur = nil
		return err
	}
	return nil
}

package narstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ErrHashMismatch marks a store path whose NAR does not match the hash or
// size in the Nix database: the store is corrupt, and nothing may be
// published for that path.
var ErrHashMismatch = fault.Permanent("NAR hash mismatch")

// MismatchError tells which path disagreed with the Nix database and how.
type MismatchError struct {
	Path              string
	WantHash, GotHash nixhash.Hash
	WantSize, GotSize uint64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: the NAR read from disk (%s, %d bytes) differs from the Nix database "+
		"(%s, %d bytes); the store path is corrupt, run `nix-store --verify --check-contents --repair`",
		e.Path, e.GotHash.Format(nixhash.NixBase32, true), e.GotSize, e.WantHash.Format(nixhash.NixBase32, true), e.WantSize)
}

// Check returns a *MismatchError when the streamed NAR (res) is not the one
// the Nix database records (info); backends that receive a NAR from
// elsewhere check it the same way.
func Check(info *store.PathInfo, res Result) error {
	if !bytes.Equal(res.NarHash.Digest(), info.NarHash.Digest()) || res.NarSize != info.NarSize {
		return &MismatchError{Path: info.Path, WantHash: info.NarHash, GotHash: res.NarHash,
			WantSize: info.NarSize, GotSize: res.NarSize}
	}
	return nil
}

// Unwrap lets errors.Is(err, ErrHashMismatch) match.
func (e *MismatchError) Unwrap() error { return ErrHashMismatch }

// Result describes one streamed NAR.
type Result struct {
	// NarHash and NarSize describe the uncompressed NAR (verified).
	NarHash nixhash.Hash
	NarSize uint64
	// FileHash (SHA-256) and FileSize describe the compressed bytes written
	// to the sink.
	FileHash nixhash.Hash
	FileSize uint64
	// Compression is what the file is compressed with.
	Compression Compression
}

// FileHashHex is the compressed file's SHA-256 in lowercase hex, as binary
// cache file names and Cachix's cFileHash use it.
func (r Result) FileHashHex() string { return r.FileHash.Format(nixhash.Base16, false) }

// Stream writes the compressed NAR of info.Path into dst. It reads the
// filesystem once, hashing the NAR and the compressed bytes on the way, and
// fails with a *MismatchError when the NAR disagrees with info. progress,
// if not nil, is called with the number of NAR bytes read so far. It uses
// the CPU as long as it runs (up to two cores for a NAR of 16 MiB or
// more): callers that stream many paths bound how many run at once.
func Stream(ctx context.Context, info *store.PathInfo, c Compression, dst io.Writer, progress func(narBytes uint64)) (Result, error) {
	return StreamOn(ctx, info, c, dst, progress, 1)
}

// StreamOn is Stream for a caller that holds cores cores for this NAR: one
// of ParallelThreshold or more is then compressed on all of them at once,
// in independent zstd frames (zstd only; bounded memory, a few frames in
// flight).
func StreamOn(ctx context.Context, info *store.PathInfo, c Compression, dst io.Writer, progress func(narBytes uint64), cores int) (Result, error) {
	fileHash := sha256.New()
	fileCount := &counter{}
	comp, err := c.compressor(io.MultiWriter(dst, fileHash, fileCount), info.NarSize, cores)
	if err != nil {
		return Result{}, fmt.Errorf("starting %s compressor: %w", c.Method, err)
	}
	narHash := sha256.New()
	narCount := &counter{ctx: ctx, progress: progress}
	// The counter goes first: it stops the dump as soon as ctx is cancelled.
	dumpErr := dumpNAR(io.MultiWriter(narCount, narHash, comp), info.Path)
	closeErr := comp.Close()
	if dumpErr != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("serialising %s: %w", info.Path, dumpErr)
	}
	if closeErr != nil {
		return Result{}, fmt.Errorf("compressing %s: %w", info.Path, closeErr)
	}
	res := Result{
		NarHash:     *nixhash.MustNewHash(nixhash.SHA256, narHash.Sum(nil)),
		NarSize:     narCount.n,
		FileHash:    *nixhash.MustNewHash(nixhash.SHA256, fileHash.Sum(nil)),
		FileSize:    fileCount.n,
		Compression: c,
	}
	if err := Check(info, res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// counter counts bytes, reports progress and aborts writes once ctx is done.
type counter struct {
	n        uint64
	ctx      context.Context
	progress func(uint64)
	reported uint64
}

// progressStep limits progress callbacks to one per MiB.
const progressStep = 1 << 20

func (c *counter) Write(p []byte) (int, error) {
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
	}
	c.n += uint64(len(p))
	if c.progress != nil && c.n-c.reported >= progressStep {
		c.reported = c.n
		c.progress(c.n)
	}
	return len(p), nil
}

// Package backend defines what a binary cache must offer to be pushed to.
//
// A push is split in two so that the pipeline can upload many NARs in
// parallel yet publish them in dependency order: Upload stores the
// compressed NAR where no substituter can see it yet, and Pending.Commit
// publishes the narinfo, which the pipeline calls only once every reference
// of the path is present in the cache. A narinfo is never visible before
// the NAR and the closure it names.
package backend

import (
	"context"
	"errors"
	"io"

	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Permanent errors: retrying cannot help, the user must act.
var (
	// ErrUnauthorized: the credentials are missing, wrong or lack write access.
	ErrUnauthorized = errors.New("not authorised")
	// ErrCacheNotFound: the cache does not exist.
	ErrCacheNotFound = errors.New("cache not found")
	// ErrRejected: the cache refused the upload (HTTP 400 and the like).
	ErrRejected = errors.New("rejected by the cache")
	// ErrNotSupported: the backend cannot do this (e.g. pins on a file cache).
	ErrNotSupported = errors.New("not supported by this cache")
	// ErrUnreachable: the cache's host cannot be reached at all (refused,
	// unknown name, no route) and the backend was told not to wait for it.
	// Not a problem the user must fix, but one no retry within this push
	// will: the push should be left for later.
	ErrUnreachable = errors.New("cache host unreachable")
)

// Permanent reports whether err is one that a retry cannot fix.
func Permanent(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrCacheNotFound) ||
		errors.Is(err, ErrRejected) || errors.Is(err, ErrNotSupported) ||
		errors.Is(err, narstream.ErrHashMismatch) || errors.Is(err, store.ErrNotInStore) ||
		errors.Is(err, ErrUnreachable) || errors.Is(err, context.Canceled)
}

// Info is what a backend tells the pipeline before the push starts.
type Info struct {
	// PreferredCompression is the cache's own default, or nil.
	PreferredCompression *narstream.Compression
}

// StreamFunc writes the compressed NAR of one path into w and returns the
// verified hashes. It may be called again for a retry: it re-reads the
// store path from disk, so no NAR is ever buffered whole.
type StreamFunc func(ctx context.Context, w io.Writer) (narstream.Result, error)

// Backend is a binary cache.
type Backend interface {
	// String names the cache for messages ("file:///srv/cache", "Cachix cache mycache").
	String() string
	// Open checks the cache is usable (exists, writable, credentials accepted)
	// and returns what it prefers. It is called once, before anything else.
	Open(ctx context.Context) (Info, error)
	// Missing returns the subset of paths (absolute store paths) the cache
	// does not have. A path whose narinfo is present counts as present.
	Missing(ctx context.Context, paths []string) (map[string]bool, error)
	// Upload stores the NAR of info produced by stream, compressed with c,
	// without making it visible to substituters. The caller retries
	// retryable failures; implementations clean up after themselves.
	Upload(ctx context.Context, info *store.PathInfo, c narstream.Compression, stream StreamFunc) (Pending, error)
}

// Pending is an uploaded NAR whose narinfo is not published yet.
type Pending interface {
	// Result is what was uploaded (hashes and sizes).
	Result() narstream.Result
	// Commit publishes the narinfo. The caller guarantees that every
	// reference of the path is already present in the cache.
	Commit(ctx context.Context) error
	// Discard abandons the upload (best effort; the NAR may linger unreferenced).
	Discard(ctx context.Context) error
}

// Pin is a named, retained reference to a store path (a Cachix concept).
type Pin struct {
	Name      string
	StorePath string
	Artifacts []string
	// Keep is nil (the cache's default), or one of KeepRevisions, KeepDays, KeepForever.
	Keep *Keep
}

// Keep is a pin retention policy.
type Keep struct {
	// Kind is "revisions", "days" or "forever".
	Kind  string
	Value int
}

// Pinner is implemented by backends that support pins.
type Pinner interface {
	CreatePin(ctx context.Context, pin Pin) error
}

// PinReader is implemented by backends that can say where pins point now.
type PinReader interface {
	// PinTargets maps each pin name to the store path of its latest revision.
	PinTargets(ctx context.Context) (map[string]string, error)
}

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
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Errors every backend may return. Each is permanent (fault.ErrPermanent):
// a retry cannot help. A backend marks its own other permanent errors the
// same way (fault.Permanent); what is not marked is
// retried.
var (
	// ErrUnauthorized: the credentials are missing, wrong or lack write access.
	ErrUnauthorized = fault.Permanent("not authorised")
	// ErrCacheNotFound: the cache does not exist.
	ErrCacheNotFound = fault.Permanent("cache not found")
	// ErrRejected: the cache refused the upload (HTTP 400 and the like).
	ErrRejected = fault.Permanent("rejected by the cache")
	// ErrNotSupported: the backend cannot do this (e.g. pins on a file cache).
	ErrNotSupported = fault.Permanent("not supported by this cache")
	// ErrUnreachable: the cache's host cannot be reached at all (refused,
	// unknown name, no route) and the backend was told not to wait for it.
	// Not a problem the user must fix, but one no retry within this push
	// will: the push should be left for later.
	ErrUnreachable = fault.Permanent("cache host unreachable")
	// ErrUnwritable: the cache's storage cannot take more (its file system
	// is full, over quota or read-only). Every other path would fail the
	// same way, and no retry within this push helps.
	ErrUnwritable = fault.Permanent("the cache cannot be written")
)

// Permanent reports whether err is one that a retry cannot fix: marked
// permanent where it was made, or a cancellation.
func Permanent(err error) bool {
	return fault.IsPermanent(err) || errors.Is(err, context.Canceled)
}

// Info is what a backend tells the pipeline before the push starts.
type Info struct {
	// PreferredCompression is the cache's own default, or nil.
	PreferredCompression *narstream.Compression
}

// LocalPresence is a backend that answers Missing from local files, too
// cheaply to be worth avoiding (a file cache): the plan asks it about the
// roots before choosing how to query the closure, and may do so while
// Open runs (a cache not created yet lacks everything).
type LocalPresence interface {
	LocalPresence() bool
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

// Flusher is implemented by backends that make what they published
// durable in one step at the end (a file cache's final syncfs) rather than
// file by file. Execute calls Flush once, after the last Commit.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Pin is a named, retained reference to a store path (a Cachix concept).
type Pin struct {
	Name      string
	StorePath string
	Artifacts []string
	// Keep is nil (the cache's default) or the retention policy.
	Keep *Keep
}

// Keep is a pin retention policy, the one representation of it: the
// manifest's JSON ("forever", {"revisions": N}, {"days": N}), the command
// line's --keep-* flags, the tables and the Cachix API all convert to and
// from it. A nil *Keep is the cache's default (every revision kept).
type Keep struct {
	Kind KeepKind
	// Value is the number of revisions or days (unused for forever).
	Value int
}

// KeepKind says what a Keep counts.
type KeepKind string

// The retention policies Cachix knows.
const (
	KeepRevisions KeepKind = "revisions"
	KeepDays      KeepKind = "days"
	KeepForever   KeepKind = "forever"
)

// Validate checks that the policy is one Cachix knows, with a count of at
// least one.
func (k Keep) Validate() error {
	switch k.Kind {
	case KeepForever:
		return nil
	case KeepRevisions, KeepDays:
		if k.Value < 1 {
			return fmt.Errorf("%s must be at least 1, not %d", k.Kind, k.Value)
		}
		return nil
	}
	return fmt.Errorf("unknown pin retention %q (want revisions, days or forever)", k.Kind)
}

// String renders the policy for a table ("3 revisions", "forever").
func (k Keep) String() string {
	if k.Kind == KeepForever {
		return "forever"
	}
	return fmt.Sprintf("%d %s", k.Value, k.Kind)
}

// MarshalJSON writes the manifest's form: "forever" or {"<kind>": N}.
func (k Keep) MarshalJSON() ([]byte, error) {
	if k.Kind == KeepForever {
		return []byte(`"forever"`), nil
	}
	return json.Marshal(map[KeepKind]int{k.Kind: k.Value})
}

// ChooseKeep builds the policy from the settings of the three mutually
// exclusive --keep-* flags (nil when none is set); it names the flags as
// flag(kind) does in its errors.
func ChooseKeep(revisions, days *int, forever bool, flag func(KeepKind) string) (*Keep, error) {
	var chosen []Keep
	if revisions != nil {
		chosen = append(chosen, Keep{Kind: KeepRevisions, Value: *revisions})
	}
	if days != nil {
		chosen = append(chosen, Keep{Kind: KeepDays, Value: *days})
	}
	if forever {
		chosen = append(chosen, Keep{Kind: KeepForever})
	}
	switch {
	case len(chosen) == 0:
		return nil, nil
	case len(chosen) > 1:
		return nil, fmt.Errorf("give at most one of %s, %s and %s", flag(KeepRevisions), flag(KeepDays), flag(KeepForever))
	case chosen[0].Validate() != nil:
		return nil, fmt.Errorf("%s must be at least 1", flag(chosen[0].Kind))
	}
	return &chosen[0], nil
}

// Pinner is implemented by backends that support pins.
type Pinner interface {
	CreatePin(ctx context.Context, pin Pin) error
}

// PinInfo is one pin as a cache lists it.
type PinInfo struct {
	Name string
	// CreatedOn is the cache's timestamp text, as sent.
	CreatedOn string
	// Keep is the retention policy, or nil for the cache's default.
	Keep *Keep
	// LastRevision is the newest revision, or nil if the cache sent none.
	LastRevision *PinRevision
}

// PinRevision is one revision of a pin.
type PinRevision struct {
	StorePath string
	Artifacts []string
	CreatedOn string
}

// PinLister is implemented by backends that can list their pins.
type PinLister interface {
	// ListPins lists the pins with their newest revisions.
	ListPins(ctx context.Context) ([]PinInfo, error)
}

// PinTargets maps each pin name to the store path of its latest revision.
func PinTargets(ctx context.Context, l PinLister) (map[string]string, error) {
	pins, err := l.ListPins(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(pins))
	for _, p := range pins {
		if p.LastRevision != nil {
			out[p.Name] = p.LastRevision.StorePath
		}
	}
	return out, nil
}

// SignatureChecker is implemented by backends that sign narinfos with a
// key and can read back those they hold: Unsigned returns those of paths
// (present in the cache) whose narinfo carries no valid signature of that
// key, of the checked ones it read (nil, 0 without a key). A push with the
// right key would say "nothing to push" over a cache that Nix requiring
// the key refuses; this tells.
type SignatureChecker interface {
	Unsigned(ctx context.Context, paths []string) (unsigned []string, checked int, err error)
}

// Substituter is implemented by backends that know the URL Nix
// substitutes their cache from (for an exported flake's fetchClosure).
type Substituter interface {
	// SubstituterURL returns the URL, or why it is not known.
	SubstituterURL(ctx context.Context) (string, error)
}

// CacheClosure is a backend that can tell, from its own narinfos alone,
// the closure of paths it has (a file cache: each narinfo names the
// path's references, and a narinfo is only written once its references'
// are). complete is false when some narinfo of the walk is missing or
// unreadable: the closure is then for Nix to compute, as usual.
type CacheClosure interface {
	CachedClosure(ctx context.Context, roots []string) (closure []string, complete bool)
}

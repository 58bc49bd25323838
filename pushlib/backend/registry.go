package backend

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Options are what building any backend needs besides its target: how it
// runs, not where it pushes.
type Options struct {
	// StoreDir is the store the cache serves (default /nix/store).
	StoreDir string
	// ReadOnly is a dry run: the backend creates and changes nothing.
	ReadOnly bool
	// NoSync skips fsync in file caches (tests, benchmarks).
	NoSync bool
	// Logger receives debug logs of network backends (nil = silent).
	Logger *zerolog.Logger
	// Version goes into the User-Agent.
	Version string
	// Network bounds the requests of network backends.
	Network Network
}

// Network bounds a backend's requests; zero fields take the backend's
// defaults.
type Network struct {
	// ConnectTimeout bounds connecting (TCP, then TLS) per attempt.
	ConnectTimeout time.Duration
	// StallTimeout fails an attempt during which no byte moves.
	StallTimeout time.Duration
	// RetryFor is how long failed requests are retried after the first
	// failure (a negative value: not at all).
	RetryFor time.Duration
	// FailFast gives up at once on a host that cannot be reached at all
	// (refused, unknown name, no route) before it answered once; the error
	// matches ErrUnreachable.
	FailFast bool
}

// Factory builds the backends of one kind of cache reference.
type Factory interface {
	// Scheme is the target.Ref scheme it builds ("cachix", "file", "s3").
	Scheme() string
	// New builds the backend for t. It does no I/O (Backend.Open checks the
	// cache); its errors are the user's to fix.
	New(t *target.Target, opts Options) (Backend, error)
}

// Registry builds backends by the scheme of their target's reference: a
// new kind of cache is a new Ref type and a Factory registered here.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry holds the given factories.
func NewRegistry(factories ...Factory) *Registry {
	r := &Registry{factories: map[string]Factory{}}
	for _, f := range factories {
		r.Register(f)
	}
	return r
}

// Register adds a factory; a scheme registered twice is a programming error.
func (r *Registry) Register(f Factory) {
	if _, dup := r.factories[f.Scheme()]; dup {
		panic("backend: scheme " + f.Scheme() + " registered twice")
	}
	r.factories[f.Scheme()] = f
}

// New builds the backend for t.
func (r *Registry) New(t *target.Target, opts Options) (Backend, error) {
	f, ok := r.factories[t.Ref.Scheme()]
	if !ok {
		return nil, fmt.Errorf("%w: no backend for %s caches (have %s)", ErrNotSupported, t.Ref.Scheme(), strings.Join(r.schemes(), ", "))
	}
	return f.New(t, opts)
}

// schemes lists the registered schemes, sorted.
func (r *Registry) schemes() []string {
	out := make([]string, 0, len(r.factories))
	for s := range r.factories {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

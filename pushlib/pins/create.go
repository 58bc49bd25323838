package pins

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Request is one pin to create by hand, as `cachix pin` does.
type Request struct {
	// Name is the pin's name.
	Name string
	// Path is a store path, ./result or a path inside a store path.
	Path string
	// Artifacts are files inside the store path the cache offers for
	// download.
	Artifacts []string
	// Keep is the retention policy (nil: the cache's default).
	Keep *backend.Keep
}

// ErrNotPushed marks a pin whose store path is not in the cache yet.
var ErrNotPushed = fault.Permanent("not in the cache")

// Create pins req.Path in the cache b, which must be a backend.Pinner:
// the path is resolved like a push's inputs, must be valid in the local
// store, every artifact must be a file inside it, and the cache must hold
// it already (a pin never pushes). It returns the store path pinned.
func Create(ctx context.Context, b backend.Backend, st *store.Store, req Request) (string, error) {
	pinner, ok := b.(backend.Pinner)
	if !ok {
		return "", fault.BadInputf("pins are a Cachix feature; %s is a plain binary cache and has none", b)
	}
	paths, err := st.Resolve([]string{req.Path})
	if err != nil {
		return "", err
	}
	path := paths[0]
	if invalid, err := st.Invalid(ctx, paths); err != nil {
		return "", err
	} else if len(invalid) > 0 {
		return "", &store.InvalidPathError{Paths: invalid}
	}
	for _, a := range req.Artifacts {
		if strings.Trim(a, "/ ") == "" {
			return "", fault.BadInputf("artifact %s names no file: give a path inside %s, such as bin/NAME", store.Quote(a), path)
		}
		full := filepath.Join(path, strings.TrimPrefix(a, "/"))
		if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
			return "", fault.BadInputf("artifact %s does not exist as a file in %s", a, path)
		}
	}
	missing, err := b.Missing(ctx, []string{path})
	if err != nil {
		return "", err
	}
	if missing[path] {
		return "", fmt.Errorf("%w: %s is not in %s; push it first (cachix-select push)", ErrNotPushed, path, b)
	}
	pin := backend.Pin{Name: req.Name, StorePath: path, Artifacts: req.Artifacts, Keep: req.Keep}
	if err := pinner.CreatePin(ctx, pin); err != nil {
		return "", err
	}
	return path, nil
}

// Exported is what ExportCache made.
type Exported struct {
	// Files are the generated files (see Export).
	Files map[string][]byte
	// Listed counts the cache's pins with a revision; Exported, those the
	// filters kept that an export can hold; Unexportable, those the
	// filters kept that it cannot (each named in Warnings).
	Listed, Exported, Unexportable int
	// Warnings are worth telling the user: no cache URL for fetchClosure,
	// pins that -A cannot select (a number where Nix wants no list index).
	Warnings []string
}

// ExportCache lists the pins of l that have a revision and exports them
// (see Export); an empty opts.CacheURL becomes the cache's substituter URL
// when it can tell it (backend.Substituter), else a warning says that the
// flake will not use fetchClosure.
func ExportCache(ctx context.Context, l backend.PinLister, opts ExportOptions) (*Exported, error) {
	list, err := l.ListPins(ctx)
	if err != nil {
		return nil, err
	}
	var ps []PinInfo
	for _, p := range list {
		if p.LastRevision == nil || p.LastRevision.StorePath == "" {
			continue
		}
		info := PinInfo{Name: p.Name, StorePath: p.LastRevision.StorePath, Artifacts: p.LastRevision.Artifacts}
		if t, err := time.Parse(time.RFC3339Nano, p.LastRevision.CreatedOn); err == nil {
			info.LastRevision = t
		}
		ps = append(ps, info)
	}
	res := &Exported{Listed: len(ps)}
	if s, ok := l.(backend.Substituter); ok && opts.CacheURL == "" {
		u, err := s.SubstituterURL(ctx)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("store.nix names no binary cache, so the flake lets Nix substitute "+
				"pinned paths from its own substituters instead of using fetchClosure (%v); give --cache-url URL to name it", err))
		}
		opts.CacheURL = u
	}
	kept, err := Filter(ps, opts.Include, opts.Exclude, opts.Systems)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPin, err)
	}
	valid, _ := representable(kept)
	res.Exported, res.Unexportable = len(valid), len(kept)-len(valid)
	files, warnings, err := export(ps, opts)
	if err != nil {
		return nil, err
	}
	res.Files, res.Warnings = files, append(res.Warnings, warnings...)
	return res, nil
}

// WriteOutput writes the exported files to out: a gzip-compressed tarball
// when its name ends in .tar.gz or .tgz, else a directory.
func WriteOutput(out string, files map[string][]byte) error {
	if strings.HasSuffix(out, ".tar.gz") || strings.HasSuffix(out, ".tgz") {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", out, err)
		}
		return WriteTarGzFile(out, files)
	}
	return WriteDir(out, files)
}

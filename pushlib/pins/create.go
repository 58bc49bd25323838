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

// ExportCache lists the pins of l that have a revision and exports them
// (see Export); an empty opts.CacheURL becomes the cache's substituter URL
// when it knows one (backend.Substituter). It returns the files, and how
// many pins with a revision the cache listed.
func ExportCache(ctx context.Context, l backend.PinLister, opts ExportOptions) (map[string][]byte, int, error) {
	list, err := l.ListPins(ctx)
	if err != nil {
		return nil, 0, err
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
	if s, ok := l.(backend.Substituter); ok && opts.CacheURL == "" {
		opts.CacheURL = s.SubstituterURL(ctx)
	}
	files, err := Export(ps, opts)
	if err != nil {
		return nil, 0, err
	}
	return files, len(ps), nil
}

// WriteOutput writes the exported files to out: a gzip-compressed tarball
// when its name ends in .tar.gz or .tgz, else a directory.
func WriteOutput(out string, files map[string][]byte) error {
	if strings.HasSuffix(out, ".tar.gz") || strings.HasSuffix(out, ".tgz") {
		return WriteTarGzFile(out, files)
	}
	return WriteDir(out, files)
}

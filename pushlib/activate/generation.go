package activate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Root is a store path pushed with a manifest without being listed in it:
// the home-manager generation or NixOS system being activated, which
// cannot be listed because the manifest is part of its closure.
type Root struct {
	// StorePath is the root; a symlink to a store path is resolved.
	StorePath string
	// Name is its manifest name (default "generation").
	Name string
	// Pin, if set, pins it in the cache like a pinned manifest path.
	Pin *manifest.Pin
}

// CheckRoot resolves a --root path and makes sure it is a store path
// that exists, so that a typo is bad input rather than a queued push of
// a path "garbage-collected" before it was ever there.
func CheckRoot(root, storeDir string) (string, error) {
	path := root
	if real, err := filepath.EvalSymlinks(root); err == nil {
		path = real
	}
	if _, err := store.ParsePath(storeDir, path); err != nil {
		return "", fmt.Errorf("--root %s is not a store path in %s: give the store path of the generation being activated", root, storeDir)
	}
	if _, err := os.Lstat(path); err != nil {
		return "", fmt.Errorf("--root %s: %w", root, fsutil.Cause(err))
	}
	return path, nil
}

// WithRoot returns the manifest with r appended to its paths, so that
// everything downstream (the fast path's records, the queue entry, the
// push, the pin) treats the root like a listed path. The rest of the
// manifest is kept as it is, unknown fields included. A root the
// manifest already lists is not added twice.
func WithRoot(raw []byte, r Root) ([]byte, error) {
	if r.StorePath == "" {
		return nil, errors.New("adding the activated generation: --root is empty")
	}
	path := r.StorePath
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	name := r.Name
	if name == "" {
		name = "generation"
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("adding the activated generation: the manifest is not a JSON object: %w", err)
	}
	var paths []json.RawMessage
	if p, ok := top["paths"]; ok && string(p) != "null" {
		if err := json.Unmarshal(p, &paths); err != nil {
			return nil, fmt.Errorf("adding the activated generation: the manifest's paths are not a list: %w", err)
		}
	}
	for _, p := range paths {
		var e struct {
			StorePath string `json:"storePath"`
		}
		if json.Unmarshal(p, &e) == nil && e.StorePath == path {
			return raw, nil
		}
	}
	entry, err := json.Marshal(manifest.Path{Name: name, StorePath: path, Pin: r.Pin})
	if err != nil {
		return nil, err
	}
	paths = append(paths, entry)
	if top["paths"], err = json.Marshal(paths); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

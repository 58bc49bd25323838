package activate

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cachix-select/cachix-select/pushlib/manifest"
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

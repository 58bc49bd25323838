package cachix

import (
	"encoding/json"
	"fmt"
	"path"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// cachixStoreDir is the only store directory Cachix serves: the API takes
// bare hashes and base names, and cachix itself cuts paths at fixed
// offsets of "/nix/store/" (§8.3).
const cachixStoreDir = "/nix/store"

// unknownDeriver is what cachix sends when there is no deriver to name.
const unknownDeriver = "unknown-deriver"

// parseStorePath checks that p is a store path under /nix/store. Paths of
// another store directory cannot go to Cachix.
func parseStorePath(p string) (store.Path, error) {
	if path.Dir(p) != cachixStoreDir {
		return store.Path{}, &cacheError{
			msg: fmt.Sprintf("%s is not a path directly under %s: Cachix only holds paths of the %s store",
				p, cachixStoreDir, cachixStoreDir),
			sentinel: backend.ErrNotSupported,
		}
	}
	return store.ParsePath(cachixStoreDir, p)
}

// decodeJSON decodes a successful API answer.
func decodeJSON(r *response, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("decoding the answer (HTTP %d): %w", r.status, err)
	}
	return nil
}

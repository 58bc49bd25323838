package cachix

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/nix-community/go-nix/pkg/storepath"

	"github.com/cachix-select/cachix-select/pushlib/backend"
)

// cachixStoreDir is the only store directory Cachix serves: the API takes
// bare hashes and base names, and cachix itself cuts paths at fixed
// offsets of "/nix/store/" (§8.3).
const cachixStoreDir = "/nix/store"

// unknownDeriver is what cachix sends when there is no deriver to name.
const unknownDeriver = "unknown-deriver"

// splitPath is a store path cut into the pieces the API wants.
type splitPath struct {
	// hash is the 32-character nix-base32 hash part.
	hash string
	// suffix is the name after "<hash>-".
	suffix string
	// base is "<hash>-<suffix>".
	base string
}

// parseStorePath checks that p is a store path under /nix/store and splits
// it. Paths of another store directory cannot go to Cachix.
func parseStorePath(p string) (splitPath, error) {
	dir, base := path.Split(p)
	if strings.TrimRight(dir, "/") != cachixStoreDir {
		return splitPath{}, &cacheError{
			msg: fmt.Sprintf("%s is not a path directly under %s: Cachix only holds paths of the %s store",
				p, cachixStoreDir, cachixStoreDir),
			sentinel: backend.ErrNotSupported,
		}
	}
	if !storepath.PathRe.MatchString(cachixStoreDir + "/" + base) {
		return splitPath{}, fmt.Errorf("%s is not a valid store path (want %s/<32-character hash>-<name>)",
			p, cachixStoreDir)
	}
	return splitPath{hash: base[:32], suffix: base[33:], base: base}, nil
}

// decodeJSON decodes a successful API answer.
func decodeJSON(r *response, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("decoding the answer (HTTP %d): %w", r.status, err)
	}
	return nil
}

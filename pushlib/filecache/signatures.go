package filecache

import (
	"context"
	"os"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
)

var _ backend.SignatureChecker = (*Cache)(nil)

// maxSignatureChecks bounds the narinfos Unsigned reads, on every push
// whose paths are all there: enough to tell a cache signed with another
// key (every path is, then), at the cost of a few milliseconds.
const maxSignatureChecks = 32

// Unsigned reads the narinfos of paths, which the cache has, and returns
// those without a valid signature of the cache's signing key (none
// without a key). An unreadable narinfo is not counted.
func (c *Cache) Unsigned(ctx context.Context, paths []string) ([]string, int, error) {
	if c.opts.SigningKey == nil {
		return nil, 0, nil
	}
	var unsigned []string
	checked := 0
	for _, p := range paths {
		if checked == maxSignatureChecks {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		text, err := os.ReadFile(c.narinfoFile(p))
		if err != nil {
			continue
		}
		checked++
		if !binarycache.SignedBy(string(text), c.opts.StoreDir, c.opts.SigningKey) {
			unsigned = append(unsigned, p)
		}
	}
	return unsigned, checked, nil
}

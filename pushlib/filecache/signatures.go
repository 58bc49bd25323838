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
	return binarycache.Unsigned(ctx, paths, maxSignatureChecks, c.opts.StoreDir, c.opts.SigningKey,
		func(_ context.Context, p string) ([]byte, error) { return os.ReadFile(c.narinfoFile(p)) })
}

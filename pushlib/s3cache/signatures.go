package s3cache

import (
	"context"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
)

var _ backend.SignatureChecker = (*Cache)(nil)

// maxSignatureChecks bounds the narinfos Unsigned reads: each is a GET,
// on every push whose paths are all there, and a cache signed with
// another key shows it in any narinfo.
const maxSignatureChecks = 1

// Unsigned reads the narinfos of up to maxSignatureChecks of paths, which
// the cache has, and returns those without a valid signature of the
// cache's signing key (none without a key). A narinfo that cannot be read
// is not counted: this is a warning, never a reason to fail the push.
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
		obj, _, _, err := c.core.GetObject(ctx, c.loc.Bucket, c.key(binarycache.NarinfoName(p)), minio.GetObjectOptions{})
		if err != nil {
			continue
		}
		text, err := io.ReadAll(io.LimitReader(obj, 1<<20))
		obj.Close()
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

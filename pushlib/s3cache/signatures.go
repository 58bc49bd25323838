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
// cache's signing key (none without a key).
func (c *Cache) Unsigned(ctx context.Context, paths []string) ([]string, int, error) {
	return binarycache.Unsigned(ctx, paths, maxSignatureChecks, c.opts.StoreDir, c.opts.SigningKey, c.readNarinfo)
}

// readNarinfo GETs the narinfo of p (at most 1 MiB of it).
func (c *Cache) readNarinfo(ctx context.Context, p string) ([]byte, error) {
	var data []byte
	err := c.do(ctx, func(ctx context.Context) error {
		obj, _, _, err := c.core.GetObject(ctx, c.loc.Bucket, c.key(binarycache.NarinfoName(p)), minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		data, err = io.ReadAll(io.LimitReader(obj, 1<<20))
		return err
	})
	return data, err
}

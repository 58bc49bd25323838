package cachix_test

import (
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/backend/backendtest"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// TestConformance runs the backend contract against the strict Cachix test
// server, which verifies every hash, size and field it is sent: once for a
// managed cache (the server signs) and once for a self-signed one (cSig).
func TestConformance(t *testing.T) {
	t.Parallel()
	key := vectorKeyParsed(t)
	for _, signed := range []bool{false, true} {
		name := map[bool]string{false: "managed", true: "self-signed"}[signed]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			backendtest.Suite{New: func(t *testing.T) backend.Backend {
				cfg := cachixserver.CacheConfig{Name: "conformance", WriteTokens: []string{testToken}}
				if signed {
					cfg.SelfSigned, cfg.PublicKey = true, key.PublicKeyBare()
				}
				srv, err := cachixserver.Start(cachixserver.Config{Caches: []cachixserver.CacheConfig{cfg}, DataDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { srv.Close() })
				opts := cachix.Options{Name: "conformance", Host: srv.URL(), Token: testToken, Retry: fastRetry, ChunkSize: cachix.MinChunkSize}
				if signed {
					opts.SigningKey = key
				}
				b, err := cachix.New(opts)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}}.Run(t)
		})
	}
}

package filecache_test

import (
	"path/filepath"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/backend/backendtest"
	"github.com/cachix-select/cachix-select/pushlib/filecache"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
)

// TestConformance runs the backend contract against a fresh file cache,
// with each compression a file cache may hold.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []narstream.Compression{narstream.DefaultCompression, {Method: narstream.XZ, Level: 1}, {Method: narstream.None}} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			backendtest.Suite{Compression: c, New: func(t *testing.T) backend.Backend {
				c, err := filecache.New(filecache.Options{URL: "file://" + filepath.Join(t.TempDir(), "cache"), NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}}.Run(t)
		})
	}
}

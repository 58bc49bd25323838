package s3cache_test

import (
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/backend/backendtest"
)

// TestConformance runs the backend contract against a fresh bucket of the
// real S3 server (skipped without it, except in CI).
func TestConformance(t *testing.T) {
	t.Parallel()
	backendtest.Suite{New: func(t *testing.T) backend.Backend {
		return open(t, bucket(t), nil)
	}}.Run(t)
}

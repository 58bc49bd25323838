package pushlib_test

import (
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/backend/backendtest"
)

// TestFakeConformance runs the backend contract against the fake the
// pipeline's tests use, so that what they prove holds for real backends.
func TestFakeConformance(t *testing.T) {
	t.Parallel()
	backendtest.Suite{New: func(t *testing.T) backend.Backend { return newFakeBackend() }}.Run(t)
}

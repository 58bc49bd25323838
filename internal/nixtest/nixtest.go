// Package nixtest runs the Nix commands tests use to build and add their
// fixtures. Test packages run in parallel, and without a daemon Nix 2.26
// can fail to open its database while other Nix processes do ("SQLite
// database … is busy"); such a failure is retried as the product's own
// queries are (store.RunRetryingBusy), only for longer, so that a suite
// is not failed by it.
package nixtest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// delays: up to 6 runs in about 6 seconds.
var delays = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
	1600 * time.Millisecond, 3200 * time.Millisecond}

// Output runs name with args and returns its stdout; on failure the error
// carries its stderr.
func Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	stdout, stderr, err := store.RunRetryingBusy(ctx, delays, name, args...)
	if err != nil {
		return stdout, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return stdout, nil
}

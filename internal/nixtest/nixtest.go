// Package nixtest runs the Nix commands tests use to build and add their
// fixtures. Test packages run in parallel, and without a daemon Nix 2.26
// can fail to open its database while other Nix processes do ("SQLite
// database … is busy"); such a failure is retried, as the product's own
// queries are (store.Busy), so that a suite is not failed by it.
package nixtest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Output runs name with args and returns its stdout; on failure the error
// carries its stderr. A run that failed on a busy database is repeated,
// up to 6 times in about 6 seconds.
func Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil {
			return stdout.Bytes(), nil
		}
		if attempt < 6 && ctx.Err() == nil && store.Busy(stderr.String()) {
			time.Sleep(delay)
			delay *= 2
			continue
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
}

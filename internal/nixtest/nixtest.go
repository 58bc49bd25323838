// Package nixtest runs the Nix commands tests use to build and add their
// fixtures. Test packages run in parallel, and without a daemon Nix 2.26
// can fail to open its database while other Nix processes do ("SQLite
// database … is busy"); such a failure is retried as the product's own
// queries are (store.RunRetryingBusy), only for longer, so that a suite
// is not failed by it. WriteScript writes the stand-ins for Nix commands
// that some tests run instead.
package nixtest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
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

// WriteScript makes path an executable file holding text. The file is
// written by a child process, not by the test's own: an executable that
// this process held open for writing can be inherited, for the instant
// between fork and exec, by a child that another parallel test starts,
// and running it then fails with ETXTBSY ("text file busy"). A child's
// descriptor is closed before WriteScript returns.
func WriteScript(t testing.TB, path, text string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `cat >"$1" && chmod 755 "$1"`, "sh", path)
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing %s: %v\n%s", path, err, out)
	}
}

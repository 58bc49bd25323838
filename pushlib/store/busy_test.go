package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/internal/nixtest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// busyNix writes a nix-store that fails its first `fails` runs with the
// given message on stderr, then answers a closure query, logging each run.
func busyNix(t *testing.T, fails int, message string) (binDir, log string) {
	t.Helper()
	binDir = t.TempDir()
	log = filepath.Join(binDir, "calls.log")
	script := `#!/bin/sh
echo "run $1" >>` + log + `
n=$(wc -l <` + log + `)
if [ "$n" -le ` + strconv.Itoa(fails) + ` ]; then echo "` + message + `" >&2; exit 1; fi
shift 3; for p in "$@"; do echo "$p"; done
`
	nixtest.WriteScript(t, filepath.Join(binDir, "nix-store"), script)
	return binDir, log
}

func runs(t *testing.T, log string) int {
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "run --query\n")
}

// TestBusyDatabaseRetried: Nix processes opening one store at once can
// fail with "SQLite database … is busy" (seen with Nix 2.26 in this
// suite); the query is run again and succeeds. A query that stays busy
// gives up after a few attempts with Nix's message, and any other failure
// is not retried.
func TestBusyDatabaseRetried(t *testing.T) {
	t.Parallel()
	root := "/nix/store/vd8qd9khb0bf2fk5cqgizp2xicy23dk0-hello"
	busy := "error: SQLite database '/nix/var/nix/db/db.sqlite' is busy"

	bin, log := busyNix(t, 2, busy)
	s := &store.Store{Dir: "/nix/store", BinDir: bin, Closures: nil}
	got, err := s.ClosurePaths(t.Context(), []string{root})
	if err != nil || len(got) != 1 || got[0] != root {
		t.Fatalf("after two busy failures: %v, %v", got, err)
	}
	if n := runs(t, log); n != 3 {
		t.Errorf("%d runs, want 3 (two busy, one answer)", n)
	}

	bin, log = busyNix(t, 100, busy)
	s = &store.Store{Dir: "/nix/store", BinDir: bin}
	_, err = s.ClosurePaths(t.Context(), []string{root})
	if !errors.Is(err, store.ErrNix) || !strings.Contains(err.Error(), "is busy") {
		t.Errorf("always busy: %v, want Nix's busy message", err)
	}
	if n := runs(t, log); n != 5 {
		t.Errorf("always busy: %d runs, want 5", n)
	}

	bin, log = busyNix(t, 100, "error: path '"+root+"' is not valid")
	s = &store.Store{Dir: "/nix/store", BinDir: bin}
	if _, err = s.ClosurePaths(t.Context(), []string{root}); err == nil {
		t.Error("a failing query succeeded")
	}
	if n := runs(t, log); n != 1 {
		t.Errorf("a failure that is not a busy database: %d closure queries, want 1", n)
	}

	for msg, want := range map[string]bool{
		busy: true,
		"warning: SQLite database '/x/db.sqlite' is busy (SQLITE_PROTOCOL)": true,
		"error: sqlite db is BUSY":                               true,
		"error: cannot open connection to remote store 'daemon'": false,
		"error: the resource is busy":                            false,
	} {
		if store.Busy(msg) != want {
			t.Errorf("Busy(%q) = %v", msg, !want)
		}
	}
}

// TestSecretsNotInNixEnvironment: the nix commands the store runs get our
// environment without the secrets cachix-select reads from it (they need
// none, and a child's environment is readable in /proc).
func TestSecretsNotInNixEnvironment(t *testing.T) {
	t.Setenv("CACHIX_AUTH_TOKEN", "token-that-must-stay-home")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-that-must-stay-home")
	t.Setenv("CACHIX_SELECT_TEST_MARK", "kept")
	bin := t.TempDir()
	envLog := filepath.Join(bin, "env.log")
	nixtest.WriteScript(t, filepath.Join(bin, "nix-store"), "#!/bin/sh\nenv >"+envLog+"\nshift 3; for p in \"$@\"; do echo \"$p\"; done\n")
	root := "/nix/store/vd8qd9khb0bf2fk5cqgizp2xicy23dk0-hello"
	s := &store.Store{Dir: "/nix/store", BinDir: bin}
	if _, err := s.ClosurePaths(t.Context(), []string{root}); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(envLog)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "must-stay-home") || !strings.Contains(string(env), "CACHIX_SELECT_TEST_MARK=kept") {
		t.Errorf("nix-store's environment:\n%s", env)
	}
}

package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/internal/nixtest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// formatNix writes a nix whose path-info answers testdata/nix-2.33-format1.json
// only when wants says so ("flag": only with --json-format 1, as a Nix that
// made the flag mandatory; "noflag": only without it, as Nix before 2.33
// and Lix, which refuse the unknown flag), logging each run's arguments.
func formatNix(t *testing.T, wants string) (binDir, log string) {
	t.Helper()
	binDir = t.TempDir()
	log = filepath.Join(binDir, "calls.log")
	answer, err := filepath.Abs(filepath.Join("testdata", "nix-2.33-format1.json"))
	if err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
echo "$*" >>` + log + `
case "$*" in *--json-format\ 1*) flag=1 ;; *) flag= ;; esac
case ` + wants + ` in
  flag) [ -n "$flag" ] || { echo "error: --json requires --json-format" >&2; exit 1; } ;;
  noflag) [ -z "$flag" ] || { echo "error: unrecognised flag '--json-format'" >&2; exit 1; } ;;
esac
cat ` + answer + `
`
	nixtest.WriteScript(t, filepath.Join(binDir, "nix"), script)
	return binDir, log
}

func callLines(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestPathInfoJSONFormat: Nix 2.33+ deprecates `path-info --json` without
// --json-format ("will become an error in a future release"), and older
// Nix and Lix refuse the flag. A Nix that insists on it is asked again
// with it, once: later queries name it at once. A Nix that refuses it is
// asked without it, one process per query, as before.
func TestPathInfoJSONFormat(t *testing.T) {
	t.Parallel()
	top := "/nix/store/dd6q030zgh4g66z31amskd61262bgyn9-top"

	bin, log := formatNix(t, "flag")
	s := &store.Store{Dir: "/nix/store", BinDir: bin}
	for i := 0; i < 2; i++ {
		infos, err := s.Query(t.Context(), []string{top})
		if err != nil || infos[top] == nil || infos[top].NarSize != 736 {
			t.Fatalf("query %d from a Nix that wants --json-format: %v, %v", i, infos, err)
		}
	}
	c := callLines(t, log)
	if len(c) != 3 || strings.Contains(c[0], "--json-format") || !strings.Contains(c[1], "--json-format 1") ||
		!strings.Contains(c[2], "--json-format 1") {
		t.Errorf("a Nix that wants --json-format: runs %q, want one without the flag, then two with it", c)
	}

	bin, log = formatNix(t, "noflag")
	s = &store.Store{Dir: "/nix/store", BinDir: bin}
	for i := 0; i < 2; i++ {
		if infos, err := s.Query(t.Context(), []string{top}); err != nil || infos[top] == nil {
			t.Fatalf("query %d from a Nix without --json-format: %v, %v", i, infos, err)
		}
	}
	if c := callLines(t, log); len(c) != 2 || strings.Contains(strings.Join(c, "\n"), "--json-format") {
		t.Errorf("a Nix without --json-format: runs %q, want two, without the flag", c)
	}

	// A query that fails for another reason reports its first error, not
	// the unknown flag's.
	bin = t.TempDir()
	nixtest.WriteScript(t, filepath.Join(bin, "nix"), `#!/bin/sh
case "$*" in *--json-format*) echo "error: unrecognised flag '--json-format'" >&2 ;; *) echo "error: cannot open the store" >&2 ;; esac
exit 1
`)
	nixtest.WriteScript(t, filepath.Join(bin, "nix-store"), "#!/bin/sh\nexit 1\n")
	s = &store.Store{Dir: "/nix/store", BinDir: bin}
	_, err := s.Query(t.Context(), []string{top})
	if !errors.Is(err, store.ErrNix) || !strings.Contains(err.Error(), "cannot open the store") {
		t.Errorf("a failing Nix: %v, want its own error", err)
	}
}

package atomicfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
)

func TestWriteReplacesOrLeavesAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	if err := atomicfile.WriteFile(dst, []byte("one"), 0o640, true); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := atomicfile.Write(dst, 0o644, false, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	got, _ := os.ReadFile(dst)
	fi, _ := os.Stat(dst)
	if string(got) != "one" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("a failed write changed the file: %q %v", got, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("a failed write left %d files", len(entries))
	}
	if err := atomicfile.WriteFile(dst, []byte("two"), 0o644, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "two" {
		t.Fatalf("got %q", got)
	}
}

// TestUnnamedFiles: an unnamed file is invisible until Commit, which links
// it into place with exactly the mode asked for (whatever the umask),
// replaces an existing destination, and leaves no other file; Abort leaves
// nothing (and never touches the directory). Without O_TMPFILE the same
// calls go through a named temporary file.
func TestUnnamedFiles(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "unnamed", true: "named"}[named], func(t *testing.T) {
			if named {
				defer atomicfile.NamedOnly()()
			}
			dir := t.TempDir()
			dst := filepath.Join(dir, "f")
			write := func(data string) *atomicfile.File {
				t.Helper()
				f, err := atomicfile.CreateUnnamed(dir)
				if err != nil {
					t.Fatal(err)
				}
				if runtime.GOOS == "linux" && f.Unnamed() == named {
					t.Fatalf("Unnamed() = %v", f.Unnamed())
				}
				if _, err := f.Write([]byte(data)); err != nil {
					t.Fatal(err)
				}
				return f
			}
			entries := func() []string {
				es, _ := os.ReadDir(dir)
				var names []string
				for _, e := range es {
					names = append(names, e.Name())
				}
				return names
			}
			f := write("one")
			if got := entries(); !named && len(got) != 0 {
				t.Fatalf("an unnamed file in progress is visible: %v", got)
			}
			if err := f.Commit(dst, 0o644, true); err != nil {
				t.Fatal(err)
			}
			f = write("two")
			if err := f.Commit(dst, 0o640, false); err != nil {
				t.Fatalf("replacing an existing file: %v", err)
			}
			got, _ := os.ReadFile(dst)
			fi, _ := os.Stat(dst)
			if string(got) != "two" || fi.Mode().Perm() != 0o640 {
				t.Fatalf("got %q mode %v, want \"two\" 0640", got, fi.Mode().Perm())
			}
			f = write("three")
			f.Abort()
			f.Abort()
			if got := entries(); len(got) != 1 || got[0] != "f" {
				t.Fatalf("files left: %v, want only f", got)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("Abort touched the directory: %v", err)
			}
			if err := f.Commit(dst, 0o644, false); err == nil {
				t.Fatal("Commit after Abort succeeded")
			}

			// Link never replaces: the file stays uncommitted for Commit.
			other := filepath.Join(dir, "g")
			f = write("four")
			if err := f.Link(other, 0o644); err != nil {
				t.Fatal(err)
			}
			f = write("five")
			if err := f.Link(other, 0o644); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Link over an existing file: %v, want fs.ErrExist", err)
			}
			if got, _ := os.ReadFile(other); string(got) != "four" {
				t.Fatalf("Link replaced the file: %q", got)
			}
			if err := f.Commit(other, 0o644, false); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(other); string(got) != "five" {
				t.Fatalf("Commit after a refused Link: %q", got)
			}
			if got := entries(); len(got) != 2 {
				t.Fatalf("files left: %v, want f and g", got)
			}
		})
	}
}

package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
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

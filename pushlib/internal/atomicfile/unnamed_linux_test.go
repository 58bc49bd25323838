package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUnnamedThroughProc: without linkat(AT_EMPTY_PATH) (a process
// without CAP_DAC_READ_SEARCH), unnamed files are linked through
// /proc/self/fd, new or replacing.
func TestUnnamedThroughProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc here")
	}
	was := noEmptyPath.Load()
	noEmptyPath.Store(true)
	defer noEmptyPath.Store(was)
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	for _, data := range []string{"one", "two"} {
		f, err := CreateUnnamed(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Unnamed() {
			t.Skip("no O_TMPFILE on this file system")
		}
		f.Write([]byte(data))
		if err := f.Commit(dst, 0o644, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); string(got) != data {
			t.Fatalf("got %q, want %q", got, data)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files, want 1", len(entries))
	}
}

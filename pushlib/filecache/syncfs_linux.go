package filecache

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS writes the dirty data of the file system holding dir to disk
// (syncfs(2)): one call for every file a push wrote there.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// startWriteback starts writing n bytes of f from off to disk and returns
// at once (sync_file_range(2), SYNC_FILE_RANGE_WRITE). It guarantees
// nothing: durability still comes from syncFS. Errors are ignored for the
// same reason (syncFS reports them).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

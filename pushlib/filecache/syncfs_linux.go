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

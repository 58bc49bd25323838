package atomicfile

import (
	"errors"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// openUnnamed opens an unnamed regular file in dir (O_TMPFILE): it has no
// name until linkInto gives it one, and vanishes with its descriptor if
// the process dies first. It fails on file systems without O_TMPFILE.
func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// linkInto gives the unnamed file f the name dst, which must not exist
// (os.ErrExist if it does). linkat with AT_EMPTY_PATH needs
// CAP_DAC_READ_SEARCH; without it, the file's /proc/self/fd link does.
func linkInto(f *os.File, dst string) error {
	fd := int(f.Fd())
	if !noEmptyPath.Load() {
		err := unix.Linkat(fd, "", unix.AT_FDCWD, dst, unix.AT_EMPTY_PATH)
		if err == nil || errors.Is(err, unix.EEXIST) {
			return wrapLink(dst, err)
		}
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
			noEmptyPath.Store(true) // not allowed to this process: never again
		}
	}
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	return wrapLink(dst, err)
}

// noEmptyPath is set once linkat(AT_EMPTY_PATH) was refused: without
// CAP_DAC_READ_SEARCH every later call would be refused too.
var noEmptyPath atomic.Bool

func wrapLink(dst string, err error) error {
	if err == nil {
		return nil
	}
	return &os.LinkError{Op: "link", Old: "(unnamed file)", New: dst, Err: err}
}

// lockFile takes f's flock, so that a cleaner that finds it under a
// temporary name leaves it alone until it is renamed.
func lockFile(f *os.File) { _ = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }

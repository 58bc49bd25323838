// Package fsutil holds what every package that reads or writes files
// needs to say about a failure in one short line.
package fsutil

import (
	"errors"
	"io/fs"
)

// Cause strips the *fs.PathError wrapper, whose message repeats a path
// (often a long temporary name) the caller already names; errors.Is still
// sees the errno underneath.
func Cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Kind names a file type for messages, with its article: "a directory",
// "a FIFO (named pipe)", "a socket", "a character device", "a block
// device", else "a special file".
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

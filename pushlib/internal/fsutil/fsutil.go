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

// Package atomicfile writes files so that readers see either the old file
// or the complete new one: the data goes to a temporary file in the same
// directory, which is renamed over the destination. A crash or a kill
// leaves at worst a stray ".tmp-*" file, never a truncated destination.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
)

// File is a temporary file that becomes its destination on Commit.
type File struct {
	*os.File
	done bool
}

// TempPrefix starts the names of temporary files, so that cleaners can
// recognise them.
const TempPrefix = ".tmp-"

// Create opens a temporary file in dir (where the destination will be).
func Create(dir string) (*File, error) {
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("creating a file in %s: %w", dir, fsutil.Cause(err))
	}
	return &File{File: f}, nil
}

// Commit gives the file mode perm, optionally syncs it to disk, and
// renames it to dst (which must be in the same directory).
func (f *File) Commit(dst string, perm fs.FileMode, sync bool) error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	f.done = true
	name := f.Name()
	fail := func(what string, err error) error {
		f.File.Close()
		os.Remove(name)
		return fmt.Errorf("%s %s: %w", what, dst, fsutil.Cause(err))
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail("syncing", err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fail("setting the mode of", err)
	}
	if err := f.File.Close(); err != nil {
		return fail("writing", err)
	}
	if err := os.Rename(name, dst); err != nil {
		os.Remove(name)
		return fmt.Errorf("renaming into place %s: %w", dst, fsutil.Cause(err))
	}
	return nil
}

// Abort removes the temporary file; it is a no-op after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}

// WriteFile replaces dst with data.
func WriteFile(dst string, data []byte, perm fs.FileMode, sync bool) error {
	return Write(dst, perm, sync, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces dst with what write produces; nothing changes if it fails.
func Write(dst string, perm fs.FileMode, sync bool, write func(io.Writer) error) error {
	f, err := Create(filepath.Dir(dst))
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", dst, fsutil.Cause(err))
	}
	return f.Commit(dst, perm, sync)
}

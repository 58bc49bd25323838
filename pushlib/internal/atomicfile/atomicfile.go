// Package atomicfile writes files so that readers see either the old file
// or the complete new one: the data goes to a temporary file in the same
// directory, which is renamed over the destination. A crash or a kill
// leaves at worst a stray ".tmp-*" file, never a truncated destination.
//
// CreateUnnamed goes further where the file system allows (Linux,
// O_TMPFILE): the file has no name at all until Commit links it into
// place, so a killed writer leaves nothing behind, and a new file costs one
// directory operation instead of two (create, rename).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
)

// File is a temporary file that becomes its destination on Commit.
type File struct {
	*os.File
	done bool
	// dir is set for an unnamed file (CreateUnnamed): the directory it
	// was opened in, where it gets its name.
	dir string
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

// CreateUnnamed opens an unnamed file in dir (where the destination will
// be) where the file system can, a temporary file (Create) where it
// cannot.
func CreateUnnamed(dir string) (*File, error) {
	if disableUnnamed.Load() {
		return Create(dir)
	}
	f, err := openUnnamed(dir)
	if err != nil {
		// No O_TMPFILE here, or the directory is unusable: Create says which.
		return Create(dir)
	}
	return &File{File: f, dir: dir}, nil
}

// disableUnnamed makes CreateUnnamed create named temporary files.
var disableUnnamed atomic.Bool

// NamedOnly makes CreateUnnamed create named temporary files until restore
// is called, as on a file system without O_TMPFILE: for tests of that
// path, which must not run in parallel with others.
func NamedOnly() (restore func()) {
	disableUnnamed.Store(true)
	return func() { disableUnnamed.Store(false) }
}

// Unnamed reports whether the file has no name until Commit.
func (f *File) Unnamed() bool { return f.dir != "" }

// Commit gives the file mode perm, optionally syncs it to disk, and
// renames it to dst (which must be in the same directory).
func (f *File) Commit(dst string, perm fs.FileMode, sync bool) error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	f.done = true
	if f.Unnamed() {
		return f.commitUnnamed(dst, perm, sync)
	}
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

// Link gives the file mode perm and the name dst if dst does not exist
// yet, and reports an error that is fs.ErrExist if it does; the file then
// stays uncommitted, for Commit (replace dst) or Abort. Unlike Commit, it
// never replaces anything, so a file with the same name is never touched.
func (f *File) Link(dst string, perm fs.FileMode) error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", dst, fsutil.Cause(err))
	}
	var err error
	if f.Unnamed() {
		err = linkInto(f.File, dst)
	} else {
		err = os.Link(f.Name(), dst)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", dst, fs.ErrExist)
	case err != nil && f.Unnamed():
		// Linking refused: Commit's way round it, for a destination that
		// did not exist a moment ago.
		f.done = true
		defer f.File.Close()
		return f.copyInto(dst, perm, false, err)
	case err != nil:
		f.Abort()
		return fmt.Errorf("linking into place %s: %w", dst, fsutil.Cause(err))
	}
	f.done = true
	f.File.Close()
	if !f.Unnamed() {
		os.Remove(f.Name())
	}
	return nil
}

// commitUnnamed is Commit for an unnamed file: it is linked to dst, or,
// when dst exists, linked to a temporary name and renamed over it (so an
// existing file is replaced, as by a named temporary file). Where linking
// is not allowed at all, the data is copied into a named temporary file.
func (f *File) commitUnnamed(dst string, perm fs.FileMode, sync bool) error {
	defer f.File.Close()
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", dst, fsutil.Cause(err))
		}
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", dst, fsutil.Cause(err))
	}
	err := linkInto(f.File, dst)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return f.copyInto(dst, perm, sync, err)
	}
	// Replace dst: give the file a temporary name, locked against cleaners
	// of abandoned temporary files, and rename that over dst.
	lockFile(f.File)
	for range 10 {
		tmp := filepath.Join(f.dir, TempPrefix+strconv.FormatUint(rand.Uint64(), 36))
		switch err := linkInto(f.File, tmp); {
		case errors.Is(err, fs.ErrExist):
			continue
		case err != nil:
			return fmt.Errorf("replacing %s: %w", dst, fsutil.Cause(err))
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("renaming into place %s: %w", dst, fsutil.Cause(err))
		}
		return nil
	}
	return fmt.Errorf("replacing %s: no free temporary name", dst)
}

// copyInto writes the unnamed file's data to dst through a named temporary
// file: the way out where the file system refuses to link an unnamed file
// (linkErr), e.g. without /proc and without CAP_DAC_READ_SEARCH.
func (f *File) copyInto(dst string, perm fs.FileMode, sync bool, linkErr error) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("linking %s: %w", dst, fsutil.Cause(linkErr))
	}
	return Write(dst, perm, sync, func(w io.Writer) error {
		_, err := io.Copy(w, f.File)
		return err
	})
}

// Abort removes the temporary file; it is a no-op after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	if !f.Unnamed() {
		os.Remove(f.Name())
	}
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

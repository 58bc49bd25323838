package pins

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/atomicfile"
)

// TarDir is the one top-level directory of the tarball. Nix (2.8 at
// least) refuses a tarball given to `-f URL` or fetchTarball unless it
// has exactly one top-level entry, and uses that directory as the root;
// create-pin-refs packed its `pins/` directory the same way.
const TarDir = "pins"

// tarEpoch (1980-01-01T00:00:00Z) is the modification time of every
// tarball entry, so the tarball depends only on the files.
const tarEpoch = 315532800

// WriteDir writes files into dir (created if missing) with mode 0644,
// each through a temporary file and a rename so that a reader never sees
// half a file. Other files in dir are left alone.
func WriteDir(dir string, files map[string][]byte) error {
	if err := checkNames(files); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating output directory: %w", err)
	}
	for _, name := range sortedNames(files) {
		if err := atomicfile.WriteFile(filepath.Join(dir, name), files[name], 0o644, false); err != nil {
			return err
		}
	}
	return nil
}

// WriteTarGz writes files as a gzip-compressed tarball whose entries are
// TarDir/ and then TarDir/<name> in name order, with fixed times, owner
// 0:0, no user or group names and modes 0755/0644: the same files always
// give the same bytes (with the same Go release; gzip output may change
// between releases). Serve it at any URL and point `nix build -f URL` or
// a flake reference (`URL#name`) at it.
func WriteTarGz(w io.Writer, files map[string][]byte) error {
	if err := checkNames(files); err != nil {
		return err
	}
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("compressing tarball: %w", err)
	}
	tw := tar.NewWriter(gz)
	header := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size,
			ModTime: time.Unix(tarEpoch, 0).UTC(), Format: tar.FormatUSTAR}
	}
	if err := tw.WriteHeader(header(TarDir+"/", 0o755, tar.TypeDir, 0)); err != nil {
		return fmt.Errorf("writing tarball: %w", err)
	}
	for _, name := range sortedNames(files) {
		data := files[name]
		if err := tw.WriteHeader(header(TarDir+"/"+name, 0o644, tar.TypeReg, int64(len(data)))); err != nil {
			return fmt.Errorf("writing tarball: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("writing tarball: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("compressing tarball: %w", err)
	}
	return nil
}

// checkNames refuses file names that would escape the output directory.
func checkNames(files map[string][]byte) error {
	for name := range files {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
			return fmt.Errorf("writing pins: %q is not a plain file name", name)
		}
	}
	return nil
}

// sortedNames returns the file names in order.
func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WriteTarGzFile writes the tarball to file atomically: a reader (a web
// server publishing it) sees the old tarball or the new one, never half.
func WriteTarGzFile(file string, files map[string][]byte) error {
	return atomicfile.Write(file, 0o644, false, func(w io.Writer) error { return WriteTarGz(w, files) })
}

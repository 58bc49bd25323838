package pins_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/pins"
)

// sampleFiles is a small export.
func sampleFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := pins.Export(basicPins(), pins.ExportOptions{CacheURL: "https://example.cachix.org"})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestWriteDir checks contents, modes, overwriting and that no temporary file is left.
func TestWriteDir(t *testing.T) {
	t.Parallel()
	files := sampleFiles(t)
	dir := filepath.Join(t.TempDir(), "out", "pins")
	// A stale file from an older export is overwritten, others are left.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pins.nix"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pins.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"README", "default.nix", "flake.nix", "pins.nix", "store.nix"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %q, want %q (no temporary files left)", names, want)
	}
	for name, want := range files {
		p := filepath.Join(dir, name)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (%v)", name, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, %v; want 0644", name, fi.Mode().Perm(), err)
		}
	}
}

// TestWriteRefusesPathNames checks no file can be written outside the output.
func TestWriteRefusesPathNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"../evil.nix", "sub/dir.nix", "", "..", `a\b`} {
		files := map[string][]byte{name: []byte("x")}
		dir := t.TempDir()
		if err := pins.WriteDir(dir, files); err == nil || !strings.Contains(err.Error(), "is not a plain file name") {
			t.Errorf("WriteDir(%q): err = %v", name, err)
		}
		if err := pins.WriteTarGz(io.Discard, files); err == nil {
			t.Errorf("WriteTarGz(%q) accepted it", name)
		}
	}
}

// TestWriteTarGz checks the tarball is reproducible and laid out as documented.
func TestWriteTarGz(t *testing.T) {
	t.Parallel()
	files := sampleFiles(t)
	var first, second bytes.Buffer
	if err := pins.WriteTarGz(&first, files); err != nil {
		t.Fatal(err)
	}
	if err := pins.WriteTarGz(&second, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("two tarballs of the same files differ")
	}

	gz, err := gzip.NewReader(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !gz.ModTime.IsZero() || gz.Name != "" {
		t.Errorf("gzip header carries time %v / name %q", gz.ModTime, gz.Name)
	}
	tr := tar.NewReader(gz)
	epoch := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: time %v, owner %d:%d %q:%q; want fixed", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		switch {
		case h.Name == "pins/":
			if h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
				t.Errorf("pins/: type %c mode %o", h.Typeflag, h.Mode)
			}
		default:
			if h.Typeflag != tar.TypeReg || h.Mode != 0o644 {
				t.Errorf("%s: type %c mode %o", h.Name, h.Typeflag, h.Mode)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if want := files[strings.TrimPrefix(h.Name, "pins/")]; !bytes.Equal(data, want) {
				t.Errorf("%s: content differs", h.Name)
			}
		}
	}
	want := []string{"pins/", "pins/default.nix", "pins/flake.nix", "pins/pins.nix", "pins/store.nix"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
}

// errWriter fails every write.
type errWriter struct{}

// Write always fails.
func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestWriteTarGzWriteError checks a failing writer is reported.
func TestWriteTarGzWriteError(t *testing.T) {
	t.Parallel()
	if err := pins.WriteTarGz(errWriter{}, sampleFiles(t)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}

package narstream

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// TestDumpMatchesGoNix: dumpNAR writes byte for byte what go-nix's
// nar.DumpPath writes, for every kind of node and for file sizes around
// the inline limit and the copy buffer, for a single file and a single
// symlink as the root, and for a real tree (Go's own sources).
func TestDumpMatchesGoNix(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	write := func(rel string, size int, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	for i, size := range []int{0, 1, 7, 8, 9, inlineFileSize - 1, inlineFileSize, inlineFileSize + 1,
		copySize, copySize + 3, 3*copySize + 5, flushSize + 17} {
		write(filepath.Join("sizes", strings.Repeat("f", i+1)), size, 0o644)
	}
	write("bin/tool", 100, 0o755)
	write("bin/owner-only-x", 10, 0o700)
	write("bin/group-x-only", 10, 0o654) // not executable by its owner: not executable in the NAR
	write("Upper", 3, 0o644)
	write("lower", 3, 0o644)
	write("ünïcode", 3, 0o644)
	write("-dash", 3, 0o644)
	if err := os.MkdirAll(filepath.Join(tree, "empty/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"link": "bin/tool", "dangling": "/nix/store/nowhere", "long": strings.Repeat("x/", 100)} {
		if err := os.Symlink(target, filepath.Join(tree, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A directory of many entries fills the header buffer past flushSize.
	for i := 0; i < 3000; i++ {
		write(filepath.Join("many", fmt.Sprintf("%s%c%d", strings.Repeat("n", 1+i%40), 'a'+i%26, i)), i%50, 0o644)
	}
	roots := []string{tree, filepath.Join(tree, "sizes", "ffff"), filepath.Join(tree, "link"), filepath.Join(tree, "empty"),
		filepath.Join(runtime.GOROOT(), "src", "encoding")}
	for _, root := range roots {
		var want, got bytes.Buffer
		if err := nar.DumpPath(&want, root); err != nil {
			t.Fatalf("go-nix on %s: %v", root, err)
		}
		if err := dumpNAR(&got, root); err != nil {
			t.Fatalf("dumpNAR on %s: %v", root, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			i := 0
			for i < min(got.Len(), want.Len()) && got.Bytes()[i] == want.Bytes()[i] {
				i++
			}
			t.Fatalf("%s: dumpNAR wrote %d bytes, go-nix %d; first difference at byte %d", root, got.Len(), want.Len(), i)
		}
	}
}

// TestDumpRefusesSpecialFiles: a fifo (or socket, device) has no NAR form;
// the dump fails naming it instead of hanging on it or skipping it.
func TestDumpRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	err := dumpNAR(&bytes.Buffer{}, dir)
	if err == nil || !strings.Contains(err.Error(), fifo+" is a FIFO (named pipe)") {
		t.Fatalf("dump of a directory holding a fifo: %v, want an error naming %s as a named pipe", err, fifo)
	}
	if !errors.Is(err, ErrNotInNAR) || !fault.IsPermanent(err) {
		t.Fatalf("%v: not ErrNotInNAR, or retried", err)
	}
}

// TestDumpMissingPath: a path that is gone fails the dump.
func TestDumpMissingPath(t *testing.T) {
	if err := dumpNAR(&bytes.Buffer{}, filepath.Join(t.TempDir(), "gone")); !os.IsNotExist(err) {
		t.Fatalf("dump of a missing path: %v, want does-not-exist", err)
	}
}

// BenchmarkDump compares dumpNAR with go-nix's nar.DumpPath, each writing
// into a SHA-256 (as a push hashes every NAR), on a 64 MiB file and on
// 1,000 tiny paths (a directory and a 300-byte file each):
//
//	go test ./pushlib/narstream -run '^$' -bench Dump -count 6 | benchstat -col /impl -
func BenchmarkDump(b *testing.B) {
	dir := b.TempDir()
	big := filepath.Join(dir, "big")
	data := make([]byte, 64<<20)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		b.Fatal(err)
	}
	var tiny []string
	for i := 0; i < 1000; i++ {
		p := filepath.Join(dir, fmt.Sprintf("tiny%d", i))
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "refs"), data[:300], 0o644); err != nil {
			b.Fatal(err)
		}
		tiny = append(tiny, p)
	}
	impls := map[string]func(io.Writer, string) error{"go-nix": nar.DumpPath, "dumpNAR": dumpNAR}
	for _, shape := range []struct {
		name  string
		paths []string
		bytes int64
	}{{"shape=64MiB", []string{big}, 64 << 20}, {"shape=1000tiny", tiny, 1000 * 300}} {
		for _, impl := range []string{"go-nix", "dumpNAR"} {
			b.Run(shape.name+"/impl="+impl, func(b *testing.B) {
				b.SetBytes(shape.bytes)
				h := sha256.New()
				for b.Loop() {
					for _, p := range shape.paths {
						h.Reset()
						if err := impls[impl](h, p); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

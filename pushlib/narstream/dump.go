package narstream

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
)

// dumpNAR writes the NAR serialisation of path to w, the format
// nix-store --dump writes and go-nix's nar.DumpPath writes too: the same
// bytes (TestDumpMatchesGoNix), and the NAR hash of every push is checked
// against the Nix database anyway.
//
// It exists for the cost per path, not for the format: nar.DumpPath hands
// every node to a goroutine of its own through channels and allocates a
// fresh 32 KiB copy buffer per file, which a push of 3,000 tiny paths
// paid for in goroutine switches, stack growth and page faults (about a
// tenth of its CPU). Here the headers and every file of up to
// inlineFileSize are gathered in one pooled buffer and written in as few
// calls as possible (a tiny path's whole NAR in one), and larger files are
// copied through a pooled buffer.
func dumpNAR(w io.Writer, path string) error {
	d := dumpers.Get().(*dumper)
	d.w, d.buf = w, d.buf[:0]
	d.str("nix-archive-1")
	err := d.node(path)
	if err == nil {
		err = d.flush()
	}
	d.w = nil
	if cap(d.buf) <= maxPooledBuf {
		dumpers.Put(d)
	}
	return err
}

// inlineFileSize is the largest file gathered into the header buffer;
// larger ones are written straight from the copy buffer.
const inlineFileSize = 64 << 10

// flushSize is how full the header buffer gets before it is written.
const flushSize = 128 << 10

// maxPooledBuf keeps a buffer grown by a huge directory out of the pool.
const maxPooledBuf = 4 * flushSize

// copySize is the copy buffer for larger files: one zstd block.
const copySize = 128 << 10

type dumper struct {
	w    io.Writer
	buf  []byte // headers and small files not yet written
	copy []byte
}

var dumpers = sync.Pool{New: func() any {
	return &dumper{buf: make([]byte, 0, flushSize+inlineFileSize+1024), copy: make([]byte, copySize)}
}}

var padding [8]byte

// str appends one NAR string: its length (uint64, little-endian), its
// bytes and zeros up to a multiple of 8.
func (d *dumper) str(s string) {
	d.buf = binary.LittleEndian.AppendUint64(d.buf, uint64(len(s)))
	d.buf = append(d.buf, s...)
	d.buf = append(d.buf, padding[:pad(uint64(len(s)))]...)
}

func pad(n uint64) uint64 { return (8 - n%8) % 8 }

func (d *dumper) flush() error {
	if len(d.buf) == 0 {
		return nil
	}
	_, err := d.w.Write(d.buf)
	d.buf = d.buf[:0]
	return err
}

func (d *dumper) node(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	d.str("(")
	d.str("type")
	switch mode := fi.Mode(); {
	case mode.IsRegular():
		if err := d.regular(p, fi); err != nil {
			return err
		}
	case mode&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		d.str("symlink")
		d.str("target")
		d.str(target)
	case mode.IsDir():
		d.str("directory")
		entries, err := os.ReadDir(p) // sorted by name, bytewise, as Nix sorts them
		if err != nil {
			return err
		}
		for _, e := range entries {
			d.str("entry")
			d.str("(")
			d.str("name")
			d.str(e.Name())
			d.str("node")
			if err := d.node(p + "/" + e.Name()); err != nil {
				return err
			}
			d.str(")")
		}
	default:
		return fmt.Errorf("%s is %s, which a NAR cannot hold: %w; run `nix-store --verify --check-contents --repair`",
			p, fsutil.Kind(fi.Mode()), ErrNotInNAR)
	}
	d.str(")")
	if len(d.buf) >= flushSize {
		return d.flush()
	}
	return nil
}

// regular writes a regular file's node from "regular" to its padded
// contents. The size is the one Lstat saw; a file that is shorter when read
// fails the dump (one that grew is cut, and its NAR hash fails the check).
func (d *dumper) regular(p string, fi os.FileInfo) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	d.str("regular")
	if fi.Mode()&0o100 != 0 { // executable by its owner, as Nix decides
		d.str("executable")
		d.str("")
	}
	d.str("contents")
	size := uint64(fi.Size())
	d.buf = binary.LittleEndian.AppendUint64(d.buf, size)
	if size <= inlineFileSize {
		n := len(d.buf)
		d.buf = append(d.buf, make([]byte, size)...)
		if _, err := io.ReadFull(f, d.buf[n:]); err != nil {
			return shortRead(p, err)
		}
	} else {
		if err := d.flush(); err != nil {
			return err
		}
		for left := size; left > 0; {
			chunk := d.copy[:min(left, uint64(len(d.copy)))]
			if _, err := io.ReadFull(f, chunk); err != nil {
				return shortRead(p, err)
			}
			if _, err := d.w.Write(chunk); err != nil {
				return err
			}
			left -= uint64(len(chunk))
		}
	}
	d.buf = append(d.buf, padding[:pad(size)]...)
	return nil
}

// ErrNotInNAR marks a store path holding a file that is neither a regular
// file, a directory nor a symlink (a named pipe, a socket, a device), which
// Nix never registers: it is not retried.
var ErrNotInNAR = fault.Permanent("the store path is corrupt")

func shortRead(p string, err error) error {
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return fmt.Errorf("%s changed while being read (shorter than its size)", p)
	}
	return err
}

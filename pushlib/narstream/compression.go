// Package narstream serialises a store path to a NAR straight from the
// filesystem and streams it through SHA-256, a compressor and a second
// SHA-256 into any writer, in bounded memory. The NAR hash and size are
// checked against what the Nix database records before the stream is
// declared good, so a corrupted store path is never published.
package narstream

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Method is a NAR compression method.
type Method string

// The compression methods a binary cache can hold.
const (
	Zstd Method = "zstd"
	XZ   Method = "xz"
	None Method = "none"
)

// ParseMethod accepts the names users type (zstd, zst, xz, none).
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(s) {
	case "zstd", "zst":
		return Zstd, nil
	case "xz":
		return XZ, nil
	case "none":
		return None, nil
	}
	return "", fmt.Errorf("unknown compression method %q: want \"zstd\" or \"xz\"", s)
}

// Choose is the one rule for the compression a user asks for, on the
// command line or in a manifest (manifest check applies it too): a method
// ParseMethod knows and a level in its range; without a method the cache's
// preference is used later, and the level is checked as for zstd now. nil
// when neither is given.
func Choose(method string, level *int) (*Compression, error) {
	if method == "" && level == nil {
		return nil, nil
	}
	// An empty Method keeps the cache's preferred method.
	c := Compression{Level: DefaultCompression.Level}
	if method != "" {
		m, err := ParseMethod(method)
		if err != nil {
			return nil, err
		}
		c.Method = m
	}
	if level != nil {
		c.Level = *level
	}
	check := c
	if check.Method == "" {
		check.Method = Zstd
	}
	if err := check.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Compression is a method and its level (0–16 for zstd, 0–9 for xz, as in cachix).
type Compression struct {
	Method Method
	Level  int
}

// DefaultCompression is what `cachix push` uses: zstd at level 2.
var DefaultCompression = Compression{Method: Zstd, Level: 2}

// FileExt is the NAR file extension in a binary cache ("nar.zst", "nar.xz", "nar").
func (c Compression) FileExt() string {
	switch c.Method {
	case Zstd:
		return "nar.zst"
	case XZ:
		return "nar.xz"
	}
	return "nar"
}

// String renders e.g. "zstd level 2".
func (c Compression) String() string {
	if c.Method == None {
		return "no compression"
	}
	return fmt.Sprintf("%s level %d", c.Method, c.Level)
}

// Validate checks the level range the way cachix does.
func (c Compression) Validate() error {
	switch c.Method {
	case Zstd:
		if c.Level < 0 || c.Level > 16 {
			return fmt.Errorf("zstd compression level %d out of range 0–16", c.Level)
		}
	case XZ:
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("xz compression level %d out of range 0–9", c.Level)
		}
	case None:
	default:
		return fmt.Errorf("unknown compression method %q", c.Method)
	}
	return nil
}

// zstdLevel maps cachix's libzstd levels onto klauspost's four encoder
// levels. Level 2 maps to SpeedDefault rather than SpeedFastest: klauspost's
// fastest level compresses markedly worse than libzstd -2, while its default
// level lands close to libzstd -2/-3 in both ratio and speed.
func zstdLevel(l int) zstd.EncoderLevel {
	switch {
	case l <= 1:
		return zstd.SpeedFastest
	case l <= 5:
		return zstd.SpeedDefault
	case l <= 9:
		return zstd.SpeedBetterCompression
	}
	return zstd.SpeedBestCompression
}

// zstdWindow bounds the encoder's window (and so its memory) per stream;
// libzstd's levels 1–3 use 1–2 MiB windows.
const zstdWindow = 4 << 20

// encoderPools reuses zstd encoders (their buffers are several MiB) across paths.
var encoderPools sync.Map // poolKey -> *sync.Pool

// poolKey separates encoders by level and mode (fixed at creation).
type poolKey struct {
	level    zstd.EncoderLevel
	conc     int
	parallel bool
	window   int
}

// asyncThreshold is the NAR size from which one path is compressed on its
// own goroutine while the next block is read and hashed: big paths then
// use both cores even when nothing else is being pushed. Smaller paths run
// synchronously; the pipeline's parallel paths keep the cores busy instead.
const asyncThreshold = 16 << 20

// ParallelThreshold is the NAR size from which a NAR given more than one
// core (StreamOn) is compressed on all of them at once, in frames
// (frames.go). Below it one core compresses while another reads and
// hashes (asyncThreshold). Measured on a 100 MB compressible NAR on 2
// cores: 0.81 × the time it took on one core, at 1.003 × `nix copy`'s size.
const ParallelThreshold = 16 << 20

// parallelThreshold is ParallelThreshold; tests lower it.
var parallelThreshold uint64 = ParallelThreshold

// Parallel reports whether a NAR of narSize bytes is compressed on every
// core it is given (StreamOn).
func Parallel(narSize uint64) bool { return narSize >= parallelThreshold }

// incompressibleWindow is the window of the parallel sections a NAR goes
// to when its start does not compress (archives, media, firmware: data
// compressed already). Their output is as large as their input, and a
// window buys them nothing. Measured on a 1 GiB random NAR on 2 cores, 4
// runs each: peak RSS 62–74 MiB with 512 KiB, 44–46 with 256 KiB, 31 with
// 128 KiB; 2.70, 2.68 and 2.79 s.
const incompressibleWindow = 256 << 10

// probeSize is how much of a NAR in that mode is looked at before the
// mode is chosen.
const probeSize = 256 << 10

// probeBufs hold the probes until the encoder starts.
var probeBufs = sync.Pool{New: func() any { b := make([]byte, 0, probeSize); return &b }}

// compressor wraps w in a compressing writer; Close flushes the compressor
// (never closes w) and returns its resources. narSize and cores pick the
// mode: synchronous for small NARs, compressing on a goroutine of its own
// for large ones, and on cores cores for a NAR of ParallelThreshold or
// more given more than one: in frames, or in parallel sections when it
// starts incompressible (frames.go).
func (c Compression) compressor(w io.Writer, narSize uint64, cores int) (io.WriteCloser, error) {
	switch c.Method {
	case Zstd:
		lvl := zstdLevel(c.Level)
		switch {
		case cores > 1 && Parallel(narSize):
			return newFramesZstd(w, lvl, cores), nil
		case narSize >= asyncThreshold:
			return zstdEncoder(w, poolKey{lvl, 2, false, zstdWindow})
		}
		return zstdEncoder(w, poolKey{lvl, 1, false, zstdWindow})
	case XZ:
		cfg := xz.WriterConfig{DictCap: xzDictCap(c.Level)}
		return cfg.NewWriter(w)
	case None:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression method %q", c.Method)
}

// zstdEncoder is a pooled encoder of that kind, writing to w.
func zstdEncoder(w io.Writer, key poolKey) (*pooledZstd, error) {
	pool, _ := encoderPools.LoadOrStore(key, &sync.Pool{})
	p := pool.(*sync.Pool)
	if enc, ok := p.Get().(*zstd.Encoder); ok {
		enc.Reset(w)
		return &pooledZstd{enc, p}, nil
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(key.level), zstd.WithWindowSize(key.window),
		zstd.WithEncoderConcurrency(key.conc), zstd.WithConcurrentBlocks(key.parallel),
		// No frame checksum, as libzstd's default (and cachix's): the
		// NAR and file hashes already protect the data.
		zstd.WithEncoderCRC(false),
		// Entropy-code literals even in blocks with no matches, as
		// libzstd does at every level: klauspost's fast levels would
		// store text with a skewed alphabet and few repeats (base64,
		// hex dumps) raw, a third larger than nix copy's output. Up to
		// v1.20.3 this option made frames that do not decode after a
		// block of a few dozen literals (TestZstdSmallBlocksDecode).
		zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		return nil, err
	}
	return &pooledZstd{enc, p}, nil
}

// incompressible reports whether sample's bytes are spread so evenly
// (at least 7.9 bits of order-0 entropy per byte, of 8) that nothing
// compresses them: data compressed or encrypted already, or random. It
// looks at byte counts only, so a random block repeated within the sample
// counts as incompressible too, which costs nothing: the smaller window
// still finds repeats up to 256 KiB back. Samples under 4 KiB say nothing.
func incompressible(sample []byte) bool {
	if len(sample) < 4<<10 {
		return false
	}
	var counts [256]int
	for _, b := range sample {
		counts[b]++
	}
	n, bits := float64(len(sample)), 0.0
	for _, c := range counts {
		if c > 0 {
			q := float64(c) / n
			bits -= q * math.Log2(q)
		}
	}
	return bits >= 7.9
}

// xzDictCap follows xz's presets: 256 KiB at -0, 1 MiB at -1, 2 MiB at -2,
// 4 MiB at -3/-4, 8 MiB at -5/-6, 16/32/64 MiB at -7/-8/-9.
func xzDictCap(level int) int {
	caps := []int{256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20}
	if level < 0 {
		level = 0
	}
	if level >= len(caps) {
		level = len(caps) - 1
	}
	return caps[level]
}

// pooledZstd returns its encoder to the pool once the stream is closed.
type pooledZstd struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (p *pooledZstd) Close() error {
	err := p.Encoder.Close()
	if err == nil {
		p.Encoder.Reset(nil)
		p.pool.Put(p.Encoder)
	}
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

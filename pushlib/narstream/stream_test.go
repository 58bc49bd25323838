package narstream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"
	"github.com/ulikunitz/xz"

	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/narstream/narstreamtest"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// helloFile writes the file of the cachix-protocol.md §10 test vector.
func helloFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(p, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// vectorInfo is the path info the §10 vector prescribes for helloFile.
func vectorInfo(t *testing.T, p string) *store.PathInfo {
	t.Helper()
	h, err := nixhash.ParseAny("sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &store.PathInfo{Path: p, NarHash: h.Hash, NarSize: 120}
}

func TestStreamVector(t *testing.T) {
	t.Parallel()
	p := helloFile(t)
	for _, c := range []narstream.Compression{
		{Method: narstream.None},
		{Method: narstream.Zstd, Level: 2},
		{Method: narstream.Zstd, Level: 16},
		{Method: narstream.XZ, Level: 2},
	} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			res, err := narstream.Stream(context.Background(), vectorInfo(t, p), c, &out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := "sha256:" + nixbase32.EncodeToString(res.NarHash.Digest()); got != "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw" {
				t.Errorf("narHash = %s", got)
			}
			if hex.EncodeToString(res.NarHash.Digest()) != "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13" {
				t.Errorf("narHash hex = %x", res.NarHash.Digest())
			}
			if res.NarSize != 120 || res.FileSize != uint64(out.Len()) {
				t.Errorf("sizes: nar %d, file %d (wrote %d)", res.NarSize, res.FileSize, out.Len())
			}
			nar := decompress(t, c.Method, out.Bytes())
			if len(nar) != 120 || !bytes.Contains(nar, []byte("nix-archive-1")) || !bytes.Contains(nar, []byte("hello\n")) {
				t.Errorf("decompressed NAR is wrong: %q", nar)
			}
		})
	}
}

// decompress undoes a compression method with an independent decoder.
func decompress(t *testing.T, m narstream.Method, b []byte) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	switch m {
	case narstream.Zstd:
		d, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	case narstream.XZ:
		x, err := xz.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = x
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStreamMismatch(t *testing.T) {
	t.Parallel()
	p := helloFile(t)
	info := vectorInfo(t, p)
	info.NarSize = 121
	_, err := narstream.Stream(context.Background(), info, narstream.DefaultCompression, io.Discard, nil)
	var me *narstream.MismatchError
	if !errors.Is(err, narstream.ErrHashMismatch) || !errors.As(err, &me) || me.GotSize != 120 {
		t.Fatalf("want a size mismatch, got %v", err)
	}
	info = vectorInfo(t, p)
	info.NarHash.Digest()[0] ^= 1
	if _, err := narstream.Stream(context.Background(), info, narstream.DefaultCompression, io.Discard, nil); !errors.Is(err, narstream.ErrHashMismatch) {
		t.Fatalf("want a hash mismatch, got %v", err)
	}
}

func TestStreamCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := narstream.Stream(ctx, vectorInfo(t, helloFile(t)), narstream.DefaultCompression, io.Discard, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestCompressionValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c  narstream.Compression
		ok bool
	}{
		{narstream.Compression{Method: narstream.Zstd, Level: 16}, true},
		{narstream.Compression{Method: narstream.Zstd, Level: 17}, false},
		{narstream.Compression{Method: narstream.XZ, Level: 9}, true},
		{narstream.Compression{Method: narstream.XZ, Level: 10}, false},
		{narstream.Compression{Method: "gzip"}, false},
	} {
		if err := tt.c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v", tt.c, err)
		}
	}
	for in, want := range map[string]narstream.Method{"zstd": narstream.Zstd, "zst": narstream.Zstd, "XZ": narstream.XZ} {
		if got, err := narstream.ParseMethod(in); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := narstream.ParseMethod("bzip2"); err == nil {
		t.Error("bzip2 must be refused")
	}
}

// TestStreamOnCores: a NAR past the parallel threshold given two cores is
// compressed on both into a zstd stream that decompresses to the NAR, with
// the hashes and sizes of what was written. Text is cut into frames of at
// most 4 MiB, each its own window; a NAR that starts incompressible
// (probe), also when text follows, is one frame of parallel sections with
// the small window.
func TestStreamOnCores(t *testing.T) {
	narstream.SetParallelThreshold(t, 8<<20)
	random := make([]byte, 3<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	text := func(w io.Writer) {
		for i := 0; i < 300_000; i++ {
			fmt.Fprintf(w, "line %09d of a compressible file\n", i*7919%1_000_003)
		}
	}
	for _, tc := range []struct {
		name      string
		write     func(w io.Writer)
		frames    int    // at least
		maxWindow uint64 // of every frame
		maxRatio  float64
	}{
		{"text", text, 3, 4 << 20, 0.5},
		{"random", func(w io.Writer) { // 9 MiB: the same 3 MiB three times, beyond any window
			for range 3 {
				_, _ = w.Write(random)
			}
		}, 1, 256 << 10, 1.01},
		{"random then text", func(w io.Writer) { _, _ = w.Write(random); text(w) }, 1, 256 << 10, 0.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "big")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(f)
			tc.write(w)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			narHash := sha256.New()
			narSize := &countWriter{}
			if err := nar.DumpPath(io.MultiWriter(narHash, narSize), p); err != nil {
				t.Fatal(err)
			}
			if narSize.n < 8<<20 {
				t.Fatalf("NAR of %d bytes, want at least 8 MiB", narSize.n)
			}
			info := &store.PathInfo{Path: p, NarHash: *nixhash.MustNewHash(nixhash.SHA256, narHash.Sum(nil)), NarSize: narSize.n}
			var out bytes.Buffer
			res, err := narstream.StreamOn(context.Background(), info, narstream.DefaultCompression, &out, nil, 2)
			if err != nil {
				t.Fatal(err)
			}
			if fh := sha256.Sum256(out.Bytes()); res.FileSize != uint64(out.Len()) || !bytes.Equal(res.FileHash.Digest(), fh[:]) {
				t.Errorf("file hash and size %x %d, wrote %x %d", res.FileHash.Digest(), res.FileSize, fh, out.Len())
			}
			frames, err := narstreamtest.ZstdFrames(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) < tc.frames {
				t.Errorf("%d frames, want at least %d", len(frames), tc.frames)
			}
			var content uint64
			for i, h := range frames {
				if h.WindowSize > tc.maxWindow || (h.HasFCS && h.FrameContentSize > 4<<20 && len(frames) > 1) {
					t.Errorf("frame %d: window %d, content %d: want a window ≤ %d and content ≤ 4 MiB", i, h.WindowSize, h.FrameContentSize, tc.maxWindow)
				}
				content += h.FrameContentSize
			}
			if len(frames) > 1 && content != info.NarSize {
				t.Errorf("the frames hold %d bytes, the NAR has %d", content, info.NarSize)
			}
			dec, err := zstd.NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			got := sha256.New()
			n, err := io.Copy(got, dec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Sum(nil), info.NarHash.Digest()) || uint64(n) != info.NarSize {
				t.Errorf("decompressed %d bytes that are not the NAR (%d bytes)", n, info.NarSize)
			}
			if ratio := float64(res.FileSize) / float64(res.NarSize); ratio > tc.maxRatio {
				t.Errorf("compressed to %.3f of the NAR, want ≤ %.2f", ratio, tc.maxRatio)
			}
		})
	}
}

// TestIncompressible: random bytes and zstd output look incompressible,
// and so does a random block repeated (byte counts only; the smaller
// window still finds those repeats); text, base64 (6 bits per byte) and
// zeros do not, nor does a sample too small to judge.
func TestIncompressible(t *testing.T) {
	t.Parallel()
	random := make([]byte, 1<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	var text bytes.Buffer
	for i := 0; text.Len() < 1<<20; i++ {
		fmt.Fprintf(&text, "line %09d of a compressible file\n", i*7919%1_000_003)
	}
	compressed := enc.EncodeAll(text.Bytes(), nil)
	repeated := bytes.Repeat(random[:64<<10], 16)
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"random", random, true},
		{"zstd output", compressed, true},
		{"text", text.Bytes(), false},
		{"zeros", make([]byte, 1<<20), false},
		{"a random block repeated", repeated, true},
		{"base64", []byte(base64.StdEncoding.EncodeToString(random)), false},
		{"too small", random[:1000], false},
	} {
		if got := narstream.Incompressible(tc.data); got != tc.want {
			t.Errorf("%s (%d bytes): Incompressible = %v, want %v", tc.name, len(tc.data), got, tc.want)
		}
	}
}

// TestZstdSkewedText: text with a small alphabet and no repeats (base64 of
// random bytes) is entropy-coded at the default level, as libzstd does,
// not stored raw: about 3/4 of its size, never more than 0.8.
func TestZstdSkewedText(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 3<<20)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "b64")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(raw)), 0o644); err != nil {
		t.Fatal(err)
	}
	h, n := sha256.New(), &countWriter{}
	if err := nar.DumpPath(io.MultiWriter(h, n), p); err != nil {
		t.Fatal(err)
	}
	info := &store.PathInfo{Path: p, NarHash: *nixhash.MustNewHash(nixhash.SHA256, h.Sum(nil)), NarSize: n.n}
	for _, level := range []int{1, 2} {
		var out bytes.Buffer
		res, err := narstream.Stream(context.Background(), info, narstream.Compression{Method: narstream.Zstd, Level: level}, &out, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ratio := float64(res.FileSize) / float64(res.NarSize); ratio > 0.8 {
			t.Errorf("zstd level %d: %d of %d bytes (%.3f), want ≤ 0.8", level, res.FileSize, res.NarSize, ratio)
		}
		if got := decompress(t, narstream.Zstd, out.Bytes()); uint64(len(got)) != n.n {
			t.Errorf("level %d: decompressed %d bytes, want %d", level, len(got), n.n)
		}
	}
}

type countWriter struct{ n uint64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += uint64(len(b)); return len(b), nil }

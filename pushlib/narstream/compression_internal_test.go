package narstream

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestZstdSmallBlocksDecode: the encoders, with the options we give them,
// write frames that decode to their input when a block holds only a few
// dozen literals. klauspost/compress up to v1.20.3 built a literal table
// for such a block, then stored the block raw because the table did not
// pay for itself, and let the next block reuse that table, which the
// decoder never received: with WithAllLitEntropyCompression (ours) every
// level wrote frames that fail to decode ("maximum output size exceeded").
// A push writes whole 128 KiB blocks and only the last one can be small,
// so a flush after every piece is how the test reaches those blocks; the
// streams are the ones upstream's fix (v1.20.4) was tested with.
func TestZstdSmallBlocksDecode(t *testing.T) {
	streams := [][]string{
		{"ahbkkdaflabkbbecakeiaaddaaaaacjaajadbbfalbkmfaamalfkja", "mmiijagdaafcbaajcmjdbalcmgbcagafbijfakbabgcfdkcaeldgfik",
			"akecbajaaaaahfabgahc", "jkcbaemekbmibgaffdegkdlifhaabiaaca", "bcjihjimfaemceeamhkabgebaaacaaaafaaback"},
		{"kbeaelahfejbdfeediaenceadfdgijlbfbabbndikkdal", "jmgcahcbkffagbdbccnoejcdlemeahaana", "aaealoaanmkabahkbfgmdccgcagnacfjafa",
			"onfaneoanaghbacbeckanaeacomfchfgabadgnhnieeliggccginaaoelgkbdelnaheaciaakibbakafihbadkdkdlhcibgibldkaanhe",
			"ahcehdkdlnbjgaacdonlkmabhbhaajacehjcokaf"},
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	// One level per klauspost encoder (zstdLevel), each synchronous and on
	// a goroutine of its own (narSize at asyncThreshold).
	for _, level := range []int{1, 2, 6, 16} {
		for _, narSize := range []uint64{1 << 10, asyncThreshold} {
			for i, pieces := range streams {
				var out bytes.Buffer
				w, err := Compression{Method: Zstd, Level: level}.compressor(&out, narSize, 1)
				if err != nil {
					t.Fatal(err)
				}
				f, ok := w.(interface{ Flush() error })
				if !ok {
					t.Fatalf("level %d: the encoder %T cannot flush", level, w)
				}
				var in []byte
				for _, p := range pieces {
					in = append(in, p...)
					if _, err := w.Write([]byte(p)); err != nil {
						t.Fatal(err)
					}
					if err := f.Flush(); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				got, err := dec.DecodeAll(out.Bytes(), nil)
				if err != nil || !bytes.Equal(got, in) {
					t.Errorf("level %d, NAR size %d, stream %d: decoded %q (%v), want %q", level, narSize, i, got, err, in)
				}
			}
		}
	}
}

// failAfter accepts n writes, then fails every one.
type failAfter struct{ n int }

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

// TestFramesWriteError: a frames-mode stream whose writer fails returns
// that error, from Write or at the latest from Close, and Close still
// waits for every frame under way before their buffers are reused.
func TestFramesWriteError(t *testing.T) {
	var text bytes.Buffer
	for i := 0; text.Len() < 20<<20; i++ {
		fmt.Fprintf(&text, "line %09d of a compressible file\n", i*7919%1_000_003)
	}
	for _, after := range []int{0, 1, 3} {
		f := newFramesZstd(&failAfter{n: after}, zstd.SpeedDefault, 2)
		var werr error
		for b := text.Bytes(); len(b) > 0 && werr == nil; {
			k := min(len(b), 64<<10)
			_, werr = f.Write(b[:k])
			b = b[k:]
		}
		cerr := f.Close()
		if werr == nil && cerr == nil {
			t.Errorf("after %d writes: no error", after)
		}
		for _, err := range []error{werr, cerr} {
			if err != nil && err.Error() != "disk full" {
				t.Errorf("after %d writes: %v, want the writer's error", after, err)
			}
		}
		if len(f.pending) != 0 {
			t.Errorf("after %d writes: Close left %d frames under way", after, len(f.pending))
		}
	}
}

// TestFramesShort: a frames-mode stream of nothing is one empty frame, and
// one shorter than the probe is its text; both decode.
func TestFramesShort(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, in := range []string{"", "a short NAR\n"} {
		var out bytes.Buffer
		f := newFramesZstd(&out, zstd.SpeedDefault, 2)
		if _, err := f.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if out.Len() == 0 {
			t.Fatalf("%q: no frame written", in)
		}
		got, err := dec.DecodeAll(out.Bytes(), nil)
		if err != nil || string(got) != in {
			t.Errorf("%q: decoded %q (%v)", in, got, err)
		}
	}
}

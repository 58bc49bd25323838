package narstream

import (
	"bytes"
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

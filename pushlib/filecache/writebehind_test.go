package filecache

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteBehind: every byte reaches the file in order, through the
// buffered writer a NAR goes through, and write-out is requested once per
// writeBehindStep written (for what came before, not for the tail).
func TestWriteBehind(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "nar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 2*writeBehindStep+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	wb := &writeBehind{f: f}
	bw := bufio.NewWriterSize(wb, 256<<10)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(100_000))
		if _, err := bw.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if wb.off != int64(len(data)) || wb.done != 2*writeBehindStep {
		t.Errorf("written %d (want %d), write-out requested up to %d (want %d)", wb.off, len(data), wb.done, 2*writeBehindStep)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("the file differs from what was written (%d bytes, want %d)", len(got), len(data))
	}
}

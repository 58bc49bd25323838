// Command floor measures the least a push of these store paths can cost on
// this machine: every path is read from the store as a NAR, hashed, zstd-
// compressed at klauspost's default level and the compressed bytes hashed,
// on GOMAXPROCS workers, writing nothing. It prints the seconds taken and
// the compressed size. The benchmark prints it beside cachix-select's
// figure, so a ratio against `nix copy` can be read against what is
// reachable at all.
//
// Usage: floor PATHS-FILE   (one store path per line, e.g. nix-store -qR)
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/nar"
)

// counter counts what passes through it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor PATHS-FILE")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	paths := strings.Fields(string(data))
	var out int64
	var failed atomic.Bool
	work := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
				zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
			for p := range work {
				fileHash, size := sha256.New(), &counter{}
				enc.Reset(io.MultiWriter(fileHash, size))
				if err := nar.DumpPath(io.MultiWriter(sha256.New(), enc), p); err != nil {
					fmt.Fprintln(os.Stderr, err)
					failed.Store(true)
				}
				enc.Close()
				atomic.AddInt64(&out, size.n)
			}
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	if failed.Load() {
		os.Exit(1)
	}
	fmt.Printf("%.3f %d\n", time.Since(start).Seconds(), out)
}

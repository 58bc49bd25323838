package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// Bounds on store paths read from stdin: no path is longer than
// PATH_MAX, and 64 MiB is hundreds of thousands of paths.
const (
	maxStdinWord  = 4096
	maxStdinBytes = 64 << 20
)

// ReadPaths splits r (stdin) on whitespace into store path inputs, like
// `cachix push` reading stdin,
// refusing binary or endless input (/dev/zero) with a one-line error
// instead of reading it into memory.
func ReadPaths(r io.Reader) ([]string, error) {
	lr := &io.LimitedReader{R: r, N: maxStdinBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 64<<10), maxStdinWord)
	sc.Split(bufio.ScanWords)
	var out []string
	for sc.Scan() {
		if lr.N <= 0 {
			return nil, fault.BadInputf("stdin: more than %d MiB of store paths; give fewer, or a manifest", maxStdinBytes>>20)
		}
		out = append(out, sc.Text())
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, fault.BadInputf("stdin: a word longer than %d bytes cannot be a store path (is stdin binary data?)", maxStdinWord)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("reading store paths from stdin: %w", err)
	}
	if lr.N <= 0 {
		return nil, fault.BadInputf("stdin: more than %d MiB of store paths; give fewer, or a manifest", maxStdinBytes>>20)
	}
	return out, nil
}

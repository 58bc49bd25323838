//go:build !linux

package atomicfile

import (
	"errors"
	"os"
)

var errNoUnnamed = errors.New("unnamed files need Linux")

func openUnnamed(dir string) (*os.File, error) { return nil, errNoUnnamed }

func linkInto(f *os.File, dst string) error { return errNoUnnamed }

func lockFile(f *os.File) {}

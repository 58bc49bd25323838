package tests

import (
	"os"
	"syscall"
	"testing"
)

// lockFile takes an exclusive flock on f, as a running flush would.
func lockFile(t *testing.T, f *os.File) {
	t.Helper()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

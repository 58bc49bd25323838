//go:build !linux

package filecache

import "syscall"

// syncFS writes dirty data to disk; without syncfs(2), of every file system.
func syncFS(dir string) error {
	syscall.Sync()
	return nil
}

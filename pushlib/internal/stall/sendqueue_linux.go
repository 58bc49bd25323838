package stall

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"
)

// sendQueue returns how many bytes sent on c the peer has not acknowledged
// yet (SIOCOUTQ), so that the stall watchdog sees an upload progress while
// the kernel's buffers drain, which can take long on a slow link after the
// last byte left the process. ok is false when it cannot be told.
func sendQueue(c net.Conn) (n int, ok bool) {
	if tc, isTLS := c.(*tls.Conn); isTLS {
		c = tc.NetConn()
	}
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var v int32
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v)))
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(v), true
}

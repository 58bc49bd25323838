//go:build !unix

package narstream

func newFrameBuf(n int) []byte { return make([]byte, n) }

func freeFrameBuf([]byte) {}

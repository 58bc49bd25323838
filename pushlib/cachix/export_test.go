package cachix

// BufferPeak exposes the most part buffers one backend held at once, so
// black-box tests can check the memory bound.
func BufferPeak(b *Backend) int64 { return b.bufPeak.Load() }

// BuffersInUse exposes the part buffers currently held (0 after an upload).
func BuffersInUse(b *Backend) int64 { return b.bufInUse.Load() }

// Package memlimit keeps the Go runtime's soft memory limit above what a
// push holds on purpose. The binary sets a limit (Enable) so that the
// garbage a push leaves is collected before the heap doubles; the caches'
// part buffers are live memory, though, and a budget of them larger than
// the limit allows (`-s 67108864 -n 8`: 576 MiB) made the collector run
// on every allocation. Each backend therefore reserves its part-buffer
// budget (Reserve), and the limit is the fixed part plus at least
// MinBuffers, or what is reserved when that is more.
package memlimit

import (
	"runtime/debug"
	"sync"
)

// MinBuffers is the part-buffer room every limit includes: the default
// budgets (Cachix 4 parts of 16 MiB, S3 8 of 8 MiB) fit in it.
const MinBuffers = 64 << 20

var (
	mu       sync.Mutex
	enabled  bool
	fixed    int64
	reserved int64
)

// Enable sets the soft limit to fixed plus the part-buffer room, now and
// whenever a reservation changes it.
func Enable(fixedBytes int64) {
	mu.Lock()
	defer mu.Unlock()
	enabled, fixed = true, fixedBytes
	apply()
}

// Reserve adds bytes of part buffers a backend may hold at once to the
// room the limit leaves (only once the reservations together exceed
// MinBuffers does the limit rise). A limit the user set ($GOMEMLIMIT,
// with no Enable) is never changed.
func Reserve(bytes int64) {
	mu.Lock()
	defer mu.Unlock()
	reserved += bytes
	apply()
}

// Limit is the limit Enable and Reserve set, or -1 when not enabled.
func Limit() int64 {
	mu.Lock()
	defer mu.Unlock()
	if !enabled {
		return -1
	}
	return fixed + max(MinBuffers, reserved)
}

func apply() {
	if enabled {
		debug.SetMemoryLimit(fixed + max(MinBuffers, reserved))
	}
}

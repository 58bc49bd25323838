package memlimit

import (
	"runtime/debug"
	"testing"
)

// TestLimitFollowsReservations: the limit is the fixed part plus
// MinBuffers until the reservations exceed it, then plus the
// reservations; nothing is set before Enable (a $GOMEMLIMIT the user set
// stays).
func TestLimitFollowsReservations(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetMemoryLimit(before)
		mu.Lock()
		enabled, fixed, reserved = false, 0, 0
		mu.Unlock()
	})
	Reserve(1 << 30)
	if got := debug.SetMemoryLimit(-1); got != before || Limit() != -1 {
		t.Fatalf("a reservation before Enable changed the limit: %d (Limit %d)", got, Limit())
	}
	reserved = 0
	const mib = 1 << 20
	Enable(48 * mib)
	for _, step := range []struct{ reserve, want int64 }{
		{0, 112 * mib},        // nothing reserved: the room for default buffers
		{64 * mib, 112 * mib}, // a default Cachix budget fits in it
		{80 * mib, 192 * mib}, // and a second one of 80 MiB (-s 16 MiB -n 4) does not
	} {
		Reserve(step.reserve)
		if got := debug.SetMemoryLimit(-1); got != step.want || Limit() != step.want {
			t.Errorf("after reserving %d MiB more: limit %d MiB (Limit %d), want %d", step.reserve/mib, got/mib, Limit()/mib, step.want/mib)
		}
	}
}

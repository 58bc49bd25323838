// Package stalltest has helpers for tests of the transports the stall
// watchdog guards.
package stalltest

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// SlowDial is an HTTP transport whose every connection is dialled after
// delay, or never when delay is negative (the dial waits for its attempt
// to be cancelled); dials counts the dials.
func SlowDial(delay time.Duration, dials *atomic.Int32) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var wait <-chan time.Time
		if delay >= 0 {
			wait = time.After(delay)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return tr
}

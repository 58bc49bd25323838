// Package stall fails an HTTP attempt during which no byte moves: a
// Watchdog per attempt, told of every read of the request body and of the
// answer (Body), and on Linux of the connection's send queue draining,
// cancels the attempt once nothing moved for its duration. Cachix's and
// S3's transports both use it; a slow transfer that moves is never cut.
// ConnectFailure tells a host that cannot be reached at all (for
// --fail-fast) from one that failed after it answered.
package stall

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/words"
)

// Error is the failure of an attempt during which nothing moved for the
// stall timeout. It is a timeout (net.Error), retried like one.
type Error struct {
	// After is the stall timeout that passed.
	After time.Duration
	// Connecting: the attempt had no connection yet (After is then the
	// connect bound).
	Connecting bool
}

// Error says how long nothing moved.
func (e *Error) Error() string {
	if e.Connecting {
		return "no connection made in " + words.Seconds(e.After)
	}
	return "no progress for " + words.Seconds(e.After)
}

// Timeout reports true: this is a timeout.
func (e *Error) Timeout() bool { return true }

// Temporary reports true: another attempt may work.
func (e *Error) Temporary() bool { return true }

// Watchdog cancels an attempt once nothing moved for its duration:
// neither a read of the request body or the answer, nor (on Linux) a
// shrinking of the connection's queue of unacknowledged bytes. It looks
// four times per duration, so a queue that drains slowly is seen moving.
// Until the attempt has a connection (SetConn) its clock is the connect
// bound instead: a slow dial is the connect timeout's to cut, not the
// stall timeout's, even when that one is the shorter.
type Watchdog struct {
	d       time.Duration
	connect time.Duration // the limit before SetConn
	last    atomic.Int64  // time of the last progress, UnixNano
	fired   atomic.Bool
	cancel  context.CancelFunc

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	conn    net.Conn
	queued  int // the send queue at the previous look, -1 unknown

	firedAfter time.Duration // the limit that passed, once fired
	firedConn  bool          // whether the attempt had its connection then
}

// Start arms a watchdog that calls cancel after d without progress once
// the attempt has its connection, and connect after the start when it
// has none by then. The transport's own connect timeouts (the dial, and
// TLS's handshake) should fail a connection before that; connect is a
// backstop for what they do not bound (a proxy that never answers
// CONNECT). Callers pass ConnectBound(d, their connect timeout).
func Start(d, connect time.Duration, cancel context.CancelFunc) *Watchdog {
	w := &Watchdog{d: d, connect: max(connect, d), cancel: cancel, queued: -1}
	w.Touch()
	w.mu.Lock()
	w.timer = time.AfterFunc(w.period(), w.check)
	w.mu.Unlock()
	return w
}

// period is how often the watchdog looks.
func (w *Watchdog) period() time.Duration { return max(w.d/4, time.Millisecond) }

// Touch records progress; it is cheap enough for every read.
func (w *Watchdog) Touch() { w.last.Store(time.Now().UnixNano()) }

// Fired reports whether the watchdog cancelled its attempt.
func (w *Watchdog) Fired() bool { return w.fired.Load() }

// Err is the failure of an attempt the watchdog cut: how long nothing
// moved (the stall timeout, or the connect bound when no connection was
// had). Call it only once Fired reports true.
func (w *Watchdog) Err() *Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return &Error{After: w.firedAfter, Connecting: !w.firedConn}
}

// ConnectBound is the limit for an attempt that has no connection yet,
// given the stall and connect timeouts: the dial (name lookup included)
// and the TLS handshake are bounded by connect each, then the request's
// first bytes by the stall timeout.
func ConnectBound(stall, connect time.Duration) time.Duration { return 2*connect + stall }

// SetConn tells the watchdog which connection the attempt uses; from now
// on the stall timeout counts.
func (w *Watchdog) SetConn(c net.Conn) {
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()
	w.Touch()
}

// check counts a drained send queue as progress, then fires when nothing
// moved for the duration, or looks again later.
func (w *Watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.conn != nil {
		if q, ok := sendQueue(w.conn); ok {
			if w.queued >= 0 && q < w.queued {
				w.Touch() // the peer acknowledged bytes since the last look
			}
			w.queued = q
		}
	}
	limit := w.d
	if w.conn == nil {
		limit = w.connect
	}
	if time.Since(time.Unix(0, w.last.Load())) < limit {
		w.timer.Reset(w.period())
		return
	}
	w.firedAfter, w.firedConn = limit, w.conn != nil
	w.fired.Store(true)
	w.cancel()
}

// Stop disarms the watchdog.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// Body reports every read of r to w. It deliberately has no WriteTo
// method, so the transport copies it in small reads that show progress as
// it goes.
func Body(r io.ReadCloser, w *Watchdog) io.ReadCloser { return &body{ReadCloser: r, w: w} }

type body struct {
	io.ReadCloser
	w *Watchdog
}

// Read passes the read on and records progress.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.Touch()
	}
	return n, err
}

// ConnectFailure reports a failure to reach a host at all: the name does
// not resolve, or no connection could be made (refused, no route, connect
// timeout). Failures after a connection was made (resets, stalls, HTTP
// errors) are not.
func ConnectFailure(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect")
}

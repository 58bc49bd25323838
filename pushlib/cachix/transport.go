package cachix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Timeouts bound each HTTP attempt, so that a host that accepts
// connections and never answers, or stops in the middle of a transfer,
// fails the attempt (which is then retried like any network error) instead
// of hanging the push. There is no limit on the total time of a request: a
// slow but moving upload of a large part is never cut. Zero fields take
// the defaults.
type Timeouts struct {
	// Connect bounds connecting to a host, TCP and TLS handshake each.
	// Default 30s.
	Connect time.Duration
	// Stall fails an attempt during which no byte moved for this long:
	// while the request is sent, while waiting for the answer, and while
	// it is read. Default 60s.
	Stall time.Duration
}

// The default timeouts.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultStallTimeout   = 60 * time.Second
)

// withDefaults fills the zero fields.
func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultConnectTimeout
	}
	if t.Stall <= 0 {
		t.Stall = DefaultStallTimeout
	}
	return t
}

// newTransport is the HTTP transport of a backend: Go's default one with
// the connect timeouts applied and more idle connections per host (parts
// upload in parallel).
func newTransport(t Timeouts) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = t.Connect
	tr.MaxIdleConnsPerHost = 32
	return tr
}

// StallError is the failure of an attempt during which nothing moved for
// the stall timeout. It is a timeout (net.Error), retried like one.
type StallError struct {
	// After is the stall timeout that passed.
	After time.Duration
}

// Error says how long nothing moved.
func (e *StallError) Error() string { return "no progress for " + seconds(e.After) }

// Timeout reports true: this is a timeout.
func (e *StallError) Timeout() bool { return true }

// Temporary reports true: another attempt may work.
func (e *StallError) Temporary() bool { return true }

// stallGuard wraps a transport so that every attempt fails with a
// *StallError when no byte of the request body is taken and no byte of the
// answer arrives for the stall timeout. It reads each answer whole (at
// most maxResponseBody bytes) before returning it, so that an answer that
// stops half-way is a failed attempt, retried, not a broken body handed to
// the caller.
type stallGuard struct {
	base  http.RoundTripper
	stall time.Duration
}

// RoundTrip runs one attempt under the watchdog.
func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	w := startWatchdog(g.stall, cancel)
	defer w.stop()

	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		w.setConn(info.Conn)
	}})
	r := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = &progressBody{ReadCloser: req.Body, w: w}
	}
	if req.GetBody != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := req.GetBody()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return &progressBody{ReadCloser: b, w: w}, nil
		}
	}
	resp, err := g.base.RoundTrip(r)
	if err != nil {
		if w.fired.Load() && req.Context().Err() == nil {
			return nil, &StallError{After: g.stall}
		}
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(&progressBody{ReadCloser: resp.Body, w: w}, maxResponseBody))
	_ = resp.Body.Close()
	if err != nil {
		if w.fired.Load() && req.Context().Err() == nil {
			return nil, &StallError{After: g.stall}
		}
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

// watchdog cancels an attempt once nothing moved for its duration:
// neither a read of the request body or the answer, nor (on Linux) a
// shrinking of the connection's queue of unacknowledged bytes. It looks
// four times per duration, so a queue that drains slowly is seen moving.
type watchdog struct {
	d      time.Duration
	last   atomic.Int64 // time of the last progress, UnixNano
	fired  atomic.Bool
	cancel context.CancelFunc

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	conn    net.Conn
	queued  int // the send queue at the previous look, -1 unknown
}

// startWatchdog arms a watchdog that calls cancel after d without progress.
func startWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d, cancel: cancel, queued: -1}
	w.touch()
	w.mu.Lock()
	w.timer = time.AfterFunc(w.period(), w.check)
	w.mu.Unlock()
	return w
}

// period is how often the watchdog looks.
func (w *watchdog) period() time.Duration { return max(w.d/4, time.Millisecond) }

// touch records progress; it is cheap enough for every read.
func (w *watchdog) touch() { w.last.Store(time.Now().UnixNano()) }

// setConn tells the watchdog which connection the attempt uses.
func (w *watchdog) setConn(c net.Conn) {
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()
}

// check counts a drained send queue as progress, then fires when nothing
// moved for the duration, or looks again later.
func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.conn != nil {
		if q, ok := sendQueue(w.conn); ok {
			if w.queued >= 0 && q < w.queued {
				w.touch() // the peer acknowledged bytes since the last look
			}
			w.queued = q
		}
	}
	if time.Since(time.Unix(0, w.last.Load())) < w.d {
		w.timer.Reset(w.period())
		return
	}
	w.fired.Store(true)
	w.cancel()
}

// stop disarms the watchdog.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// progressBody reports every read to the watchdog. It deliberately has no
// WriteTo method, so the transport copies it in small reads that show
// progress as it goes.
type progressBody struct {
	io.ReadCloser
	w *watchdog
}

// Read passes the read on and records progress.
func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.touch()
	}
	return n, err
}

// connectionFailure reports a failure to reach a host at all: the name
// does not resolve, or no connection could be made (refused, no route,
// connect timeout). Failures after a connection was made (resets, stalls,
// HTTP errors) are not.
func connectionFailure(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect")
}

// describe says in a few words why an attempt got no answer: "connection
// refused", "unknown host name", "no progress for 60 s". It falls back to
// the error's own text.
func describe(err error) string {
	var stall *StallError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &stall):
		return stall.Error()
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "unknown host name"
		case dnsErr.IsTimeout:
			return "the host name lookup timed out"
		}
		return "looking up the host name failed: " + dnsErr.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network is unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before the answer was complete"
	case errors.As(err, &opErr) && opErr.Op == "dial" && opErr.Timeout():
		return "connecting timed out"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timed out: " + err.Error()
	}
	return err.Error()
}

// seconds renders a duration for messages: "90 s", "1.5 s", "250 ms".
func seconds(d time.Duration) string {
	switch {
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	case d >= time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

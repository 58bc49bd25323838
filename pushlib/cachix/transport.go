package cachix

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/stall"
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
type StallError = stall.Error

// stallGuard wraps a transport so that every attempt fails with a
// *StallError when no byte of the request body is taken and no byte of the
// answer arrives for the stall timeout. It reads each answer whole (at
// most maxResponseBody bytes) before returning it, so that an answer that
// stops half-way is a failed attempt, retried, not a broken body handed to
// the caller.
type stallGuard struct {
	base    http.RoundTripper
	stall   time.Duration
	connect time.Duration
}

// RoundTrip runs one attempt under the watchdog.
func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	w := stall.Start(g.stall, stall.ConnectBound(g.stall, g.connect), cancel)
	defer w.Stop()

	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		w.SetConn(info.Conn)
	}})
	r := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = stall.Body(req.Body, w)
	}
	if req.GetBody != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := req.GetBody()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return stall.Body(b, w), nil
		}
	}
	resp, err := g.base.RoundTrip(r)
	if err != nil {
		if w.Fired() && req.Context().Err() == nil {
			return nil, w.Err()
		}
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(stall.Body(resp.Body, w), maxResponseBody))
	_ = resp.Body.Close()
	if err != nil {
		if w.Fired() && req.Context().Err() == nil {
			return nil, w.Err()
		}
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
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

package s3cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/rs/zerolog"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/internal/stall"
	"github.com/cachix-select/cachix-select/pushlib/internal/words"
)

// roundTripper counts and logs the requests (method, path and status,
// never a header), remembers the service's clock for the clock-skew
// message, and applies the network bounds: each attempt fails once no
// byte moved for stall, and the attempts of one operation stop once they
// have failed for retryFor (see bounded), or at the first connection
// failure with failFast before the service answered once.
type roundTripper struct {
	base     http.RoundTripper
	log      *zerolog.Logger
	stall    time.Duration
	connect  time.Duration
	failFast bool
	answered atomic.Bool // the service answered a request once

	mu   sync.Mutex
	n    map[string]int
	date time.Time
}

func (t *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	r, guard := t.guard(req)
	resp, err := t.base.RoundTrip(r)
	if guard != nil {
		if err != nil {
			err = guard.end(err)
		} else {
			resp.Body = &guardedBody{ReadCloser: stall.Body(resp.Body, guard.w), g: guard}
		}
	}
	t.mu.Lock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[req.Method]++
	if resp != nil {
		if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			t.date = d
		}
	}
	t.mu.Unlock()
	t.outcome(req.Context(), resp, err)
	if t.log != nil {
		ev := t.log.Debug().Str("method", req.Method).Str("path", req.URL.Path).Dur("took", time.Since(start))
		if err != nil {
			ev = ev.Str("error", err.Error())
		} else {
			ev = ev.Int("status", resp.StatusCode)
		}
		ev.Msg("s3 request")
	}
	return resp, err
}

// retriedStatus are the HTTP statuses minio-go retries (its
// retryableHTTPStatusCodes), retriedCodes the S3 error codes it retries
// whatever the status (its retryableS3Codes): both count as failures for
// the budget, so that --retry-for ends them too.
var (
	retriedStatus = map[int]bool{http.StatusRequestTimeout: true, http.StatusTooManyRequests: true, 499: true,
		http.StatusInternalServerError: true, http.StatusBadGateway: true, http.StatusServiceUnavailable: true,
		http.StatusGatewayTimeout: true, 520: true}
	retriedCodes = map[string]bool{"RequestError": true, "RequestTimeout": true, "Throttling": true,
		"ThrottlingException": true, "RequestLimitExceeded": true, "RequestThrottled": true, "InternalError": true,
		"SlowDown": true, "SlowDownWrite": true, "SlowDownRead": true}
	// expiredCodes are retried by minio-go too, but no retry renews a
	// session token: the first one ends the operation with the service's
	// own answer (classify explains it).
	expiredCodes = map[string]bool{"ExpiredToken": true, "ExpiredTokenException": true}
)

// errorCode finds the <Code> of an S3 error answer.
var errorCode = regexp.MustCompile(`<Code>([A-Za-z]+)</Code>`)

// outcome tells the operation's budget how the attempt went. An error
// answer (4xx but 404) has its body read here, at most 64 KiB, for its S3
// code, and put back for minio-go.
func (t *roundTripper) outcome(ctx context.Context, resp *http.Response, err error) {
	b, _ := ctx.Value(budgetKey{}).(*budget)
	switch {
	case err != nil:
		if ctx.Err() != nil || b == nil {
			return
		}
		if t.failFast && !t.answered.Load() && stall.ConnectFailure(err) {
			b.giveUp(err, true)
			return
		}
		b.failed(err)
		return
	}
	t.answered.Store(true)
	if b == nil {
		return
	}
	if retriedStatus[resp.StatusCode] {
		b.failed(&statusError{resp.Status})
		return
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound && resp.Body != nil {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
		if m := errorCode.FindSubmatch(data); m != nil {
			switch code := string(m[1]); {
			case expiredCodes[code]:
				b.cancel(minio.ErrorResponse{Code: code, StatusCode: resp.StatusCode, Message: "the session token has expired"})
				return
			case retriedCodes[code]:
				b.failed(&statusError{resp.Status + " (" + code + ")"})
				return
			}
		}
	}
	b.succeeded()
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// attemptGuard is one attempt's stall watchdog.
type attemptGuard struct {
	w      *stall.Watchdog
	cancel context.CancelFunc
	parent context.Context
	once   sync.Once
}

// serverCopyRate is the slowest a service is taken to copy an object on
// its side (completing a multipart upload, copying the staging object to
// its content address) before it answers: an S3 service may send no byte
// while it works (AWS sends spaces to keep the connection alive, not every
// service does), so such a request may be silent for its object's size at
// this rate beyond the stall timeout before it is cut.
const serverCopyRate = 16 << 20 // bytes per second

// serverWorkKey holds, in a request's context, how much longer than the
// stall timeout its answer may take (withServerWork).
type serverWorkKey struct{}

// withServerWork marks the requests made with ctx as asking the service
// to copy size bytes before it answers.
func withServerWork(ctx context.Context, size uint64) context.Context {
	return context.WithValue(ctx, serverWorkKey{}, time.Duration(size/serverCopyRate+1)*time.Second)
}

// guard puts the attempt under a stall watchdog (none when t.stall is 0).
func (t *roundTripper) guard(req *http.Request) (*http.Request, *attemptGuard) {
	if t.stall <= 0 {
		return req, nil
	}
	d := t.stall
	if extra, ok := req.Context().Value(serverWorkKey{}).(time.Duration); ok {
		d += extra
	}
	ctx, cancel := context.WithCancel(req.Context())
	g := &attemptGuard{w: stall.Start(d, stall.ConnectBound(t.stall, t.connect), cancel), cancel: cancel, parent: req.Context()}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		g.w.SetConn(info.Conn)
	}})
	r := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = stall.Body(req.Body, g.w)
	}
	if req.GetBody != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := req.GetBody()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return stall.Body(b, g.w), nil
		}
	}
	return r, g
}

// end disarms the guard; err becomes a *stall.Error when the watchdog
// cut the attempt (and not the caller).
func (g *attemptGuard) end(err error) error {
	g.once.Do(func() { g.w.Stop(); g.cancel() })
	if err != nil && g.w.Fired() && g.parent.Err() == nil {
		return g.w.Err()
	}
	return err
}

// guardedBody keeps the watchdog on while the answer is read, and ends it
// when the body is closed.
type guardedBody struct {
	io.ReadCloser
	g *attemptGuard
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.g.w.Fired() && b.g.parent.Err() == nil {
		err = b.g.w.Err()
	}
	return n, err
}

func (b *guardedBody) Close() error {
	err := b.ReadCloser.Close()
	b.g.end(nil)
	return err
}

// budgetKey holds an operation's *budget in its context.
type budgetKey struct{}

// budget ends the retries of one operation (minio-go retries each request
// on connection errors, timeouts, 429 and 5xx) once its attempts have been
// failing for retryFor since the first failure (at once when it is 0,
// never when negative): it cancels the operation's context with a *gaveUp
// cause. An attempt already under way when the time is up may finish; a
// success resets it.
type budget struct {
	host     string
	retryFor time.Duration
	cancel   context.CancelCauseFunc

	mu       sync.Mutex
	first    time.Time
	attempts int
}

// failed records a failed attempt and gives up once the time is up.
func (b *budget) failed(err error) {
	b.mu.Lock()
	b.attempts++
	if b.first.IsZero() {
		b.first = time.Now()
	}
	over := b.retryFor >= 0 && time.Since(b.first) >= b.retryFor
	b.mu.Unlock()
	if over {
		b.giveUp(err, false)
	}
}

// succeeded resets the budget: the service answers.
func (b *budget) succeeded() {
	b.mu.Lock()
	b.first, b.attempts = time.Time{}, 0
	b.mu.Unlock()
}

// giveUp stops the operation with the last failure.
func (b *budget) giveUp(err error, unreachable bool) {
	b.mu.Lock()
	g := &gaveUp{host: b.host, err: err, attempts: max(b.attempts, 1), unreachable: unreachable}
	if !b.first.IsZero() {
		g.elapsed = time.Since(b.first)
	}
	b.mu.Unlock()
	b.cancel(g)
}

// gaveUp is an operation stopped by its budget.
type gaveUp struct {
	host        string
	err         error
	attempts    int
	elapsed     time.Duration
	unreachable bool
}

// statusError is an answer that minio-go retries: HTTP 429 or 5xx.
type statusError struct{ status string }

func (e *statusError) Error() string { return "HTTP " + e.status }

func (g *gaveUp) Error() string {
	var st *statusError
	if errors.As(g.err, &st) {
		s := fmt.Sprintf("%s kept answering %v", g.host, g.err)
		if g.attempts > 1 {
			s += fmt.Sprintf(" (gave up after %s in %s)", words.Count(g.attempts, "attempt", "attempts"),
				words.Seconds(g.elapsed.Round(100*time.Millisecond)))
		}
		return s + ": the service is overloaded or failing; try again later, or give it longer with --retry-for"
	}
	s := fmt.Sprintf("cannot reach %s (%v)", g.host, g.err)
	if g.attempts > 1 {
		s += fmt.Sprintf(", gave up after %s in %s", words.Count(g.attempts, "attempt", "attempts"),
			words.Seconds(g.elapsed.Round(100*time.Millisecond)))
	}
	if g.unreachable {
		return s + ": check the endpoint and the network (given up at once: --fail-fast)"
	}
	return s + ": check the endpoint and the network"
}

// Unwrap exposes the last failure and the sentinel: ErrUnreachable, and
// backend.ErrUnreachable (permanent: the push stops) with fail-fast.
func (g *gaveUp) Unwrap() []error {
	if g.unreachable {
		return []error{g.err, ErrUnreachable, backend.ErrUnreachable}
	}
	return []error{g.err, ErrUnreachable}
}

// bounded gives one operation (a request and minio-go's retries of it,
// or a listing) a context under the retry budget; done translates the
// operation's error: when the budget stopped it, the *gaveUp saying why.
func (c *Cache) bounded(ctx context.Context) (context.Context, func(error) error) {
	bctx, cancel := context.WithCancelCause(ctx)
	retryFor := c.opts.RetryFor // > 0: the budget
	if retryFor <= 0 {
		// 0: MaxRetries alone; < 0: no retries, which MaxRetries = 1
		// makes, so that minio-go still reads the one error answer.
		retryFor = -1
	}
	b := &budget{host: c.loc.Host(), retryFor: retryFor, cancel: cancel}
	bctx = context.WithValue(bctx, budgetKey{}, b)
	return bctx, func(err error) error {
		cause := context.Cause(bctx)
		cancel(nil)
		var g *gaveUp
		var er minio.ErrorResponse
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.As(cause, &g):
			return g
		case errors.As(cause, &er):
			return er
		}
		return err
	}
}

// do runs one operation under the network bounds (see bounded); op must
// be done with its context when it returns (bodies read and closed).
func (c *Cache) do(ctx context.Context, op func(ctx context.Context) error) error {
	bctx, done := c.bounded(ctx)
	return done(op(bctx))
}

// counts is a copy of the request counters.
func (t *roundTripper) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.n))
	for k, v := range t.n {
		out[k] = v
	}
	return out
}

// serverDate is the Date of the last response (zero if none).
func (t *roundTripper) serverDate() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.date
}

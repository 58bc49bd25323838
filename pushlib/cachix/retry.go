package cachix

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/events"
	"github.com/cachix-select/cachix-select/pushlib/internal/stall"
	"github.com/cachix-select/cachix-select/pushlib/internal/words"
)

// RetryPolicy is the HTTP-level retry policy of `cachix push` (protocol
// §5.9a): full-jitter exponential backoff, each delay capped, retrying until
// the accumulated delay would pass a total budget. Zero fields take the
// defaults; tests shrink them to run fast.
type RetryPolicy struct {
	// Base is the backoff base: the first retry waits between Base/2 and
	// Base, the n-th between Base·2ⁿ⁻² and Base·2ⁿ⁻¹. Default 1s.
	Base time.Duration
	// MaxDelay caps each computed delay. Default 15s.
	MaxDelay time.Duration
	// MaxTotal stops retrying once the accumulated delay would exceed it.
	// Default 90s.
	MaxTotal time.Duration
	// MaxHint clamps a server's Retry-After or retry_after hint. Default
	// 120s. A hint is honoured as long as MaxTotal is not used up, even
	// when the wait ends past it.
	MaxHint time.Duration
	// None disables retries: the first failure is final.
	None bool
}

// The defaults of `cachix push`.
const (
	defaultRetryBase     = time.Second
	defaultRetryMaxDelay = 15 * time.Second
	defaultRetryMaxTotal = 90 * time.Second
	defaultRetryMaxHint  = 120 * time.Second
)

// withDefaults fills the zero fields with cachix's values.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Base <= 0 {
		p.Base = defaultRetryBase
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = defaultRetryMaxDelay
	}
	if p.MaxTotal <= 0 {
		p.MaxTotal = defaultRetryMaxTotal
	}
	if p.MaxHint <= 0 {
		p.MaxHint = defaultRetryMaxHint
	}
	return p
}

// backoff is the computed (hint-free) delay before retry number n (0 for
// the first retry), as the Haskell retry package's fullJitterBackoff
// defines it: d = Base·2ⁿ/2, a random delay in [d, 2d], capped at MaxDelay.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < 2*p.MaxDelay; i++ { // stop doubling past the cap: no overflow
		d *= 2
	}
	d /= 2
	if d <= 0 || d >= p.MaxDelay {
		return p.MaxDelay
	}
	delay := d + rand.N(d+1)
	return min(delay, p.MaxDelay)
}

// retryState follows one logical request through its attempts: it decides
// whether to retry and how long to wait, and remembers why it stopped.
type retryState struct {
	policy RetryPolicy
	// client and host, when set, record which hosts answered and report a
	// host's trouble once (events.HostRetry).
	client   *apiClient
	host     string
	attempts int
	retries  int
	total    time.Duration
	next     time.Duration
	// firstFailure is when the first failed attempt ended.
	firstFailure time.Time
	// exhausted is set when a retryable failure was not retried because the
	// budget ran out.
	exhausted bool
	// unreachable is set when a connection failure was final (fail-fast).
	unreachable bool
}

// elapsed is the time since the first failure.
func (s *retryState) elapsed() time.Duration {
	if s.firstFailure.IsZero() {
		return 0
	}
	return time.Since(s.firstFailure)
}

// check is the retryablehttp CheckRetry hook: it classifies the outcome of
// an attempt and, when it is retryable, computes the next delay and checks
// it against the budget. The budget counts the time since the first
// failure, or the delays when they add up to more (as in cachix), so that
// attempts that each take long (timeouts) cannot stretch it.
func (s *retryState) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	s.attempts++
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	if resp != nil && s.client != nil {
		s.client.reached.Store(s.host, struct{}{})
	}
	var hint time.Duration
	switch {
	case err != nil:
		if !retryableTransportError(err) {
			return false, nil
		}
		if s.client != nil && s.client.failFast && stall.ConnectFailure(err) {
			if _, ok := s.client.reached.Load(s.host); !ok {
				s.unreachable = true
				return false, nil
			}
		}
	case resp != nil:
		if !retryableStatus(resp.StatusCode) {
			return false, nil
		}
		hint = retryHint(resp, time.Now())
	default:
		return false, nil
	}
	if s.firstFailure.IsZero() {
		s.firstFailure = time.Now()
	}
	if s.policy.None {
		return false, nil
	}
	delay := s.policy.backoff(s.retries)
	spent := max(s.total, s.elapsed())
	retry := spent+delay <= s.policy.MaxTotal
	past := time.Duration(0)
	if hint > 0 {
		// The server said when to come back: that is honoured (up to
		// MaxHint) while the budget lasts, even if the wait ends past it,
		// rather than giving up at once on a hint longer than what is left.
		delay = min(hint, s.policy.MaxHint)
		retry = spent < s.policy.MaxTotal
		if spent+delay > s.policy.MaxTotal {
			past = delay
		}
	}
	if !retry {
		s.exhausted = true
		return false, nil
	}
	s.total += delay
	s.retries++
	s.next = delay
	if s.retries == 1 {
		s.announce(ctx, resp, err, past)
	}
	return true, nil
}

// announce reports, once per host, that requests to it are being retried,
// so that a push does not sit silent for the whole retry budget. past is
// the server's requested wait when it ends after the budget (then that
// is said, since the wait is longer than "up to" the budget).
func (s *retryState) announce(ctx context.Context, resp *http.Response, err error, past time.Duration) {
	if s.client == nil {
		return
	}
	if _, done := s.client.announced.LoadOrStore(s.host, struct{}{}); done {
		return
	}
	var why, msg string
	budget := words.Seconds(s.policy.MaxTotal)
	if err != nil {
		why = describe(transportCause(err, s.client.scrub))
		msg = fmt.Sprintf("%s %s (%s); retrying for up to %s", lostVerb(err), s.host, why, budget)
	} else {
		why = fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		msg = fmt.Sprintf("%s answers %s; retrying for up to %s", s.host, why, budget)
		if past > 0 {
			msg = fmt.Sprintf("%s answers %s and asks to wait %s; waiting for it, though that ends past the %s of retrying",
				s.host, why, words.Seconds(past), budget)
		}
	}
	events.FromContext(ctx).Emit(events.Event{Kind: events.HostRetry, Host: s.host, Error: why, Message: msg})
}

// wait is the retryablehttp Backoff hook: it returns the delay check chose.
func (s *retryState) wait(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return s.next
}

// retryableStatus reports the statuses cachix retries: 429 and every 5xx.
// 400, 401, 403, 404 and the other 4xx are final.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code <= 599)
}

// retryableTransportError reports whether a failure to get a response is
// worth retrying: connection refusals, resets, EOFs, timeouts and dropped
// connections are; cancellation, bad URLs, redirect loops and certificate
// problems are not.
func retryableTransportError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, errRedirectRefused) {
		return false
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) ||
		errors.As(err, &invalidCert) {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		msg := ue.Err.Error()
		if strings.Contains(msg, "unsupported protocol scheme") || strings.Contains(msg, "stopped after") ||
			strings.Contains(msg, "invalid header") || strings.Contains(msg, "certificate is not trusted") {
			return false
		}
	}
	return true
}

// maxHintBody bounds how much of an error body is read to find retry_after.
const maxHintBody = 64 << 10

// retryHint returns the server's requested delay: the Retry-After header
// (integer seconds or an HTTP date), else a JSON retry_after field in an
// application/problem+json or application/json body. It returns 0 when
// there is no usable hint (absent, ≤ 0, or a date in the past), so that the
// computed delay applies. A body it reads is put back for the caller.
func retryHint(resp *http.Response, now time.Time) time.Duration {
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			if secs <= 0 || secs > int64(time.Duration(1<<62)/time.Second) {
				return 0
			}
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d
			}
			return 0
		}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if (mt != "application/problem+json" && mt != "application/json") || resp.Body == nil {
		return 0
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHintBody))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return 0
	}
	var problem struct {
		RetryAfter *float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &problem) != nil || problem.RetryAfter == nil || *problem.RetryAfter <= 0 {
		return 0
	}
	secs := min(*problem.RetryAfter, float64(time.Duration(1<<62)/time.Second))
	return time.Duration(secs * float64(time.Second))
}

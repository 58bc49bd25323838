package cachixserver

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
)

// FaultKind is one way a request can be made to fail.
type FaultKind string

// The injectable faults.
const (
	Fault429  FaultKind = "429"  // 429 Too Many Requests with Retry-After
	Fault500  FaultKind = "500"  // 500 Internal Server Error
	Fault502  FaultKind = "502"  // 502 Bad Gateway
	Fault503  FaultKind = "503"  // 503 Service Unavailable
	FaultDrop FaultKind = "drop" // connection closed mid-request, no response
	// A client error a retry cannot fix, for FailNext only (never drawn at
	// random): 400 Bad Request and 404 Not Found.
	Fault400 FaultKind = "400"
	Fault404 FaultKind = "404"
)

// AllFaultKinds lists every fault kind, the default set.
func AllFaultKinds() []FaultKind {
	return []FaultKind{Fault429, Fault500, Fault502, Fault503, FaultDrop}
}

// ParseFaultKind accepts the names used by FaultKind's constants.
func ParseFaultKind(s string) (FaultKind, error) {
	for _, k := range append(AllFaultKinds(), Fault400, Fault404) {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown fault kind %q (want 429, 500, 502, 503, drop, 400 or 404)", s)
}

// queuedFault is a deterministic fault for the next matching requests.
type queuedFault struct {
	endpoint  Endpoint // "" matches every faultable endpoint
	kind      FaultKind
	remaining int
}

// faultInjector decides, per request, whether and how it fails.
type faultInjector struct {
	mu         sync.Mutex
	rng        *rand.Rand
	rate       float64
	kinds      []FaultKind
	retryAfter int
	view       bool
	queued     []*queuedFault
}

// newFaultInjector validates the fault settings of cfg.
func newFaultInjector(cfg Config) (*faultInjector, error) {
	f := &faultInjector{
		rng:        rand.New(rand.NewPCG(uint64(cfg.Seed), 0x63616368)), //nolint:gosec // deterministic on purpose
		retryAfter: cfg.RetryAfter,
		view:       cfg.FaultBinaryCache,
	}
	if err := f.setRate(cfg.FaultRate); err != nil {
		return nil, err
	}
	if err := f.setKinds(cfg.FaultKinds); err != nil {
		return nil, err
	}
	return f, nil
}

// setRate changes the fault probability.
func (f *faultInjector) setRate(rate float64) error {
	if rate < 0 || rate > 1 || rate != rate {
		return fmt.Errorf("fault rate %v is not within 0..1", rate)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = rate
	return nil
}

// setKinds changes the fault kinds to choose from (empty: all).
func (f *faultInjector) setKinds(kinds []FaultKind) error {
	for _, k := range kinds {
		if _, err := ParseFaultKind(string(k)); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(kinds) == 0 {
		kinds = AllFaultKinds()
	}
	f.kinds = append([]FaultKind(nil), kinds...)
	return nil
}

// decide returns the fault to inject into a request, if any. Queued
// faults come first (one naming this endpoint explicitly applies even to
// the binary-cache view); then one random draw per faultable request keeps
// the sequence deterministic for a given seed and request order.
func (f *faultInjector) decide(ep Endpoint, sc scope) (FaultKind, bool) {
	if ep == EndpointUnknown {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	faultable := sc != scopeView || f.view
	for i, q := range f.queued {
		if q.endpoint == ep || q.endpoint == "" && faultable {
			q.remaining--
			if q.remaining <= 0 {
				f.queued = append(f.queued[:i], f.queued[i+1:]...)
			}
			return q.kind, true
		}
	}
	if !faultable || f.rate <= 0 {
		return "", false
	}
	if f.rng.Float64() >= f.rate {
		return "", false
	}
	return f.kinds[f.rng.IntN(len(f.kinds))], true
}

// inject produces the fault's response (or lack of one).
func (f *faultInjector) inject(w http.ResponseWriter, r *http.Request, kind FaultKind) {
	switch kind {
	case Fault429:
		f.mu.Lock()
		ra := f.retryAfter
		f.mu.Unlock()
		if ra >= 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ra))
		}
		writeText(w, http.StatusTooManyRequests, "Too Many Requests (injected fault)")
	case Fault500:
		writeText(w, http.StatusInternalServerError, "Internal Server Error (injected fault)")
	case Fault502:
		writeText(w, http.StatusBadGateway, "Bad Gateway (injected fault)")
	case Fault503:
		writeText(w, http.StatusServiceUnavailable, "Service Unavailable (injected fault)")
	case Fault400:
		writeText(w, http.StatusBadRequest, "Bad Request (injected fault)")
	case Fault404:
		writeText(w, http.StatusNotFound, "Not Found (injected fault)")
	case FaultDrop:
		// Read a little of the body so the drop happens mid-request.
		_, _ = io.CopyN(io.Discard, r.Body, 4096)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// HTTP/2 cannot be hijacked; abort the stream instead.
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
	}
}

// SetFaultRate changes the probability that a faultable request fails.
func (s *Server) SetFaultRate(rate float64) error {
	return s.faults.setRate(rate)
}

// SetFaultKinds changes the kinds of faults injected at random (empty: all).
func (s *Server) SetFaultKinds(kinds ...FaultKind) error {
	return s.faults.setKinds(kinds)
}

// SetRetryAfter changes the Retry-After seconds sent with an injected 429
// (negative: no header).
func (s *Server) SetRetryAfter(seconds int) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.retryAfter = seconds
}

// FailNext makes the next n requests to endpoint ("" for any faultable
// endpoint) fail with kind, regardless of the fault rate.
func (s *Server) FailNext(endpoint Endpoint, kind FaultKind, n int) error {
	if _, err := ParseFaultKind(string(kind)); err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.queued = append(s.faults.queued, &queuedFault{endpoint: endpoint, kind: kind, remaining: n})
	return nil
}

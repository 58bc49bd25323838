package s3cache

import (
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// roundTripper counts and logs the requests (method, path and status,
// never a header) and remembers the service's clock for the clock-skew
// message.
type roundTripper struct {
	base http.RoundTripper
	log  *zerolog.Logger

	mu   sync.Mutex
	n    map[string]int
	date time.Time
}

func (t *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
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

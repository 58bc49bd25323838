package cachix

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/internal/stall"
	"github.com/cachix-select/cachix-select/pushlib/internal/words"
)

// HTTPError is an answer from Cachix (or its storage) that the client did
// not expect. Its message names the operation, the status and what the
// server said.
type HTTPError struct {
	// Op says what was being done, e.g. "querying cache mycache for missing paths".
	Op string
	// StatusCode is the HTTP status of the last attempt.
	StatusCode int
	// Message is the server's explanation, trimmed and bounded in length.
	Message string
	// Attempts is how many times the request was sent.
	Attempts int
}

// Error renders one line: operation, status, server message, attempts.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", e.Op, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts)", e.Attempts)
	}
	return b.String()
}

// NetworkError is a failure to get any answer from a host, after retries.
type NetworkError struct {
	// Host is the host that could not be reached (API or storage).
	Host string
	// Attempts is how many times the request was sent.
	Attempts int
	// Elapsed is the time from the first failure to giving up.
	Elapsed time.Duration
	// Unreachable is set when the host was given up at once because it
	// cannot be reached at all (Options.FailFast); the error then also
	// matches backend.ErrUnreachable.
	Unreachable bool
	// Err is the transport error of the last attempt (without the URL).
	Err error
}

// Error names the host, the cause in a few words and the attempts.
func (e *NetworkError) Error() string {
	s := fmt.Sprintf("%s %s: %s", lostVerb(e.Err), e.Host, describe(e.Err))
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (gave up after %d attempts in %s)", e.Attempts, words.Seconds(roundElapsed(e.Elapsed)))
	}
	return s
}

// Unwrap exposes the transport error, and ErrUnreachable for a host given
// up at once.
func (e *NetworkError) Unwrap() []error {
	if e.Unreachable {
		return []error{e.Err, backend.ErrUnreachable}
	}
	return []error{e.Err}
}

// cacheError is a friendly one-line message that still matches a backend
// sentinel (ErrUnauthorized, ErrCacheNotFound, …) and the underlying cause
// with errors.Is / errors.As.
type cacheError struct {
	msg      string
	sentinel error
	cause    error
}

// Error is the friendly message alone.
func (e *cacheError) Error() string { return e.msg }

// Unwrap exposes the sentinel and the cause.
func (e *cacheError) Unwrap() []error {
	var errs []error
	if e.sentinel != nil {
		errs = append(errs, e.sentinel)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// maxMessage bounds how much of a server's message goes into an error.
const maxMessage = 300

// serverMessage extracts a readable message from an error body: the
// message/detail/error/title field of a JSON object, else the text itself,
// on one line, bounded in length, with secrets scrubbed.
func serverMessage(body []byte, scrub func(string) string) string {
	text := strings.TrimSpace(string(body))
	var obj map[string]any
	if strings.HasPrefix(text, "{") && json.Unmarshal(body, &obj) == nil {
		for _, k := range []string{"message", "detail", "error", "title", "errorMessage"} {
			if s, ok := obj[k].(string); ok && strings.TrimSpace(s) != "" {
				text = strings.TrimSpace(s)
				break
			}
		}
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "?")
	}
	text = strings.Join(strings.Fields(text), " ")
	text = scrub(text)
	if len(text) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

// roundElapsed rounds a duration for a message: to the second from 10 s.
func roundElapsed(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// lostVerb is how a message starts for a failed attempt: "cannot reach"
// a host no connection could be made to, "no answer from" one that took
// the connection.
func lostVerb(err error) string {
	if stall.ConnectFailure(err) {
		return "cannot reach"
	}
	return "no answer from"
}

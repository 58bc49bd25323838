package cachix

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
)

// zerologAdapter lets go-retryablehttp log through zerolog. Every value is
// scrubbed first: the token is replaced and URL query strings (presigned
// storage URLs carry signatures there) are cut, so neither reaches a log.
type zerologAdapter struct {
	log   *zerolog.Logger
	scrub func(string) string
}

// Error is used by go-retryablehttp for each failed attempt, including ones
// that will be retried; the final outcome is reported by the caller, so it
// is logged as a warning.
func (a zerologAdapter) Error(msg string, kv ...any) { a.emit(a.log.Warn(), msg, kv) }

// Warn logs a warning from go-retryablehttp.
func (a zerologAdapter) Warn(msg string, kv ...any) { a.emit(a.log.Warn(), msg, kv) }

// Info logs go-retryablehttp's informational messages.
func (a zerologAdapter) Info(msg string, kv ...any) { a.emit(a.log.Info(), msg, kv) }

// Debug logs go-retryablehttp's per-request and per-retry messages.
func (a zerologAdapter) Debug(msg string, kv ...any) { a.emit(a.log.Debug(), msg, kv) }

// emit turns go-retryablehttp's key/value pairs into scrubbed zerolog fields.
func (a zerologAdapter) emit(e *zerolog.Event, msg string, kv []any) {
	if e == nil {
		return
	}
	for i := 0; i+1 < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		switch v := kv[i+1].(type) {
		case int:
			e = e.Int(key, v)
		case fmt.Stringer:
			e = e.Str(key, a.scrub(v.String()))
		case error:
			e = e.Str(key, a.scrub(v.Error()))
		default:
			e = e.Str(key, a.scrub(fmt.Sprint(v)))
		}
	}
	e.Msg(a.scrub(msg))
}

// urlQuery matches the query string of a URL inside free text.
var urlQuery = regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"']*`)

// scrubber returns a function that removes token and URL query strings
// from text destined for logs or error messages.
func scrubber(token string) func(string) string {
	return func(s string) string {
		if token != "" {
			s = redactToken(s, token)
		}
		return urlQuery.ReplaceAllString(s, "$1?<redacted>")
	}
}

// redactToken replaces every occurrence of token in s. A short token (no
// real Cachix token is: they are JWTs) is replaced only where it is not part
// of a longer word, so "x" as a token hides itself, not the x of
// "cachix.org" in the message that says the host is unreachable.
func redactToken(s, token string) string {
	if len(token) >= 16 {
		return strings.ReplaceAll(s, token, "<redacted>")
	}
	var b strings.Builder
	for {
		i := strings.Index(s, token)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(token)
		whole := (i == 0 || !tokenByte(s[i-1])) && (end == len(s) || !tokenByte(s[end]))
		b.WriteString(s[:i])
		if whole {
			b.WriteString("<redacted>")
		} else {
			b.WriteString(token)
		}
		s = s[end:]
	}
}

// tokenByte reports whether c can be part of a token (a JWT: base64url
// segments joined by dots).
func tokenByte(c byte) bool {
	return c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

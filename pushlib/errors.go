package pushlib

import (
	"errors"
	"fmt"
)

// ErrBadInput marks problems with what the user gave us (as opposed to the
// cache or the network failing): exit code 2 territory. Its own text never
// shows; the message is the wrapped error's.
var ErrBadInput = errors.New("bad input")

// inputError is a bad-input error whose message is just its cause.
type inputError struct{ err error }

func (e *inputError) Error() string   { return e.err.Error() }
func (e *inputError) Unwrap() []error { return []error{ErrBadInput, e.err} }

// BadInputf builds an error matching ErrBadInput (and anything %w-wrapped in it).
func BadInputf(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

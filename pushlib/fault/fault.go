// Package fault classifies the library's errors once, where they are
// made, so that no caller keeps a list of sentinels: an error is bad input
// (the user gave something wrong: exit code 2), permanent (no retry within
// this push can fix it, though the user may not be at fault), or neither
// (the cache or the network failed: worth trying again later).
//
// Each package declares its own sentinels with BadInput or Permanent; the
// sentinels keep their identity for errors.Is, and also match ErrBadInput
// or ErrPermanent. Callers ask errors.Is(err, fault.ErrBadInput) or
// IsPermanent(err), whatever package the error came from.
package fault

import (
	"errors"
	"fmt"
)

// ErrBadInput matches every error that the user must fix: a malformed
// manifest, a path not in the store, an unreadable secret file, an
// unusable cache location. Bad input is also permanent. Its own text never
// shows.
var ErrBadInput = errors.New("bad input")

// ErrPermanent matches every error that a retry cannot fix: the cache
// refused the upload, the credentials are wrong, the NAR on disk is
// corrupt, the cache host cannot be reached at all. Its own text never
// shows.
var ErrPermanent = errors.New("permanent failure")

// sentinel is an error value that is itself and also each of its kinds.
type sentinel struct {
	msg   string
	kinds []error
}

func (s *sentinel) Error() string { return s.msg }

// Is makes errors.Is match the sentinel's kinds.
func (s *sentinel) Is(target error) bool {
	for _, k := range s.kinds {
		if target == k {
			return true
		}
	}
	return false
}

// BadInput declares a sentinel error that matches ErrBadInput and
// ErrPermanent.
func BadInput(msg string) error {
	return &sentinel{msg: msg, kinds: []error{ErrBadInput, ErrPermanent}}
}

// Permanent declares a sentinel error that matches ErrPermanent.
func Permanent(msg string) error {
	return &sentinel{msg: msg, kinds: []error{ErrPermanent}}
}

// marked is an error shown as its cause that also matches a kind.
type marked struct {
	err  error
	kind error
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.kind, m.err} }

// BadInputf builds an error that matches ErrBadInput (and ErrPermanent, and
// anything %w-wrapped in it); its message is the formatted text alone.
func BadInputf(format string, args ...any) error {
	return &marked{err: fmt.Errorf(format, args...), kind: badInputKind}
}

// badInputKind matches both ErrBadInput and ErrPermanent.
var badInputKind = &sentinel{msg: "bad input", kinds: []error{ErrBadInput, ErrPermanent}}

// IsPermanent reports whether no retry can fix err.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

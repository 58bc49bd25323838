package store

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// ErrBadPath marks a string that cannot be a store path at all: Nix itself
// would reject its hash or name, so no push of it can ever succeed.
var ErrBadPath = errors.New("not a valid store path")

// hashLen is the length of the nix-base32 hash part of a store path name.
const hashLen = 32

// MaxNameLen is the longest name part Nix accepts in a store path.
const MaxNameLen = 211

// BadPathError says why a string is not a store path. Its message shows
// the string escaped and shortened (see Quote), never verbatim.
type BadPathError struct {
	// Path is the offending string, unmodified.
	Path string
	// Reason is a short explanation ("its name contains '\n'").
	Reason string
}

// Error renders one line.
func (e *BadPathError) Error() string {
	return fmt.Sprintf("%s is not a valid store path: %s", Quote(e.Path), e.Reason)
}

// Unwrap lets errors.Is match ErrBadPath, and ErrNotInStore: a string that
// cannot be a store path is not a valid path of the store either.
func (e *BadPathError) Unwrap() []error { return []error{ErrBadPath, ErrNotInStore} }

// CheckPath checks that p is a store path of the store at dir as Nix
// itself parses one: dir + "/" + a 32-character nix-base32 hash, "-", and
// a name of 1 to 211 characters from [A-Za-z0-9+-._?=] that is not "." or
// "..". It does not look at the disk. go-nix's storepath package is not used
// for the name because it rejects every leading dot (Nix does not), works
// only for /nix/store and repeats the whole input in its errors.
func CheckPath(dir, p string) error {
	prefix := strings.TrimRight(dir, "/") + "/"
	base, ok := strings.CutPrefix(p, prefix)
	switch {
	case !ok:
		return &BadPathError{p, "it is not in " + strings.TrimRight(dir, "/")}
	case strings.Contains(base, "/"):
		return &BadPathError{p, "it points inside a store path"}
	case len(base) < hashLen+2 || base[hashLen] != '-':
		return &BadPathError{p, fmt.Sprintf("want %s<32-character hash>-<name>", prefix)}
	}
	if err := nixbase32.ValidateString(base[:hashLen]); err != nil {
		return &BadPathError{p, fmt.Sprintf("its hash part %s is not nix-base32 (digits and lower-case letters except e, o, u, t)",
			Quote(base[:hashLen]))}
	}
	return checkName(p, base[hashLen+1:])
}

// checkName applies Nix's rules for the name part of a store path.
func checkName(p, name string) error {
	if len(name) > MaxNameLen {
		return &BadPathError{p, fmt.Sprintf("its name is %d bytes long; Nix allows at most %d", len(name), MaxNameLen)}
	}
	if name == "." || name == ".." || strings.HasPrefix(name, ".-") || strings.HasPrefix(name, "..-") {
		return &BadPathError{p, fmt.Sprintf("Nix does not allow the name %s", Quote(name))}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !nameChar(c) {
			return &BadPathError{p, fmt.Sprintf("its name contains %s, which Nix does not allow in store path names "+
				"(only A-Z a-z 0-9 + - . _ ? =)", quoteByte(name[i:]))}
		}
	}
	return nil
}

// nameChar reports the bytes Nix allows in a store path name.
func nameChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("+-._?=", c) >= 0
}

// quoteByte shows the character at the start of s: a quoted rune when s
// starts with valid UTF-8, else the byte in \x form.
func quoteByte(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf(`byte \x%02x`, s[0])
	}
	return strconv.QuoteRune(r)
}

// maxQuoted is how many bytes of an input Quote shows.
const maxQuoted = 100

// Quote renders user input for a one-line message: unchanged when it is
// short and printable, else Go-quoted (control characters, newlines and
// invalid UTF-8 escaped) and cut after 100 bytes with its length noted, so
// that a 50 MB or multi-line input never ends up in a terminal or a log.
func Quote(s string) string {
	if len(s) <= maxQuoted && plain(s) {
		return s
	}
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// plain reports text that prints as itself on one line: valid UTF-8,
// printable, no spaces or quotes that would make it ambiguous.
func plain(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

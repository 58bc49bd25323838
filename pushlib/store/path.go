package store

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/storepath"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// ErrBadPath marks a string that cannot be a store path at all: Nix itself
// would reject its hash or name, so no push of it can ever succeed.
var ErrBadPath = fault.BadInput("not a valid store path")

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

// Path is a store path: the store directory it is in, and the hash digest
// and name of its base name as go-nix's storepath.StorePath holds them.
// Make one with ParsePath (or ParseAbsolute), which applies Nix's own
// rules; go-nix's StorePath.Validate is stricter than Nix (it rejects a
// leading dot) and knows only /nix/store, so it is not used.
type Path struct {
	storepath.StorePath
	dir  string
	hash string
}

// ParsePath parses p as a store path of the store at dir as Nix itself
// parses one: dir + "/" + a 32-character nix-base32 hash, "-", and a name
// of 1 to 211 characters from [A-Za-z0-9+-._?=] that is not "." or "..".
// It does not look at the disk. Errors are *BadPathError values, whose
// messages show p escaped and cut (go-nix repeats the whole input).
func ParsePath(dir, p string) (Path, error) {
	dir = strings.TrimRight(dir, "/")
	base, ok := strings.CutPrefix(p, dir+"/")
	switch {
	case !ok:
		return Path{}, &BadPathError{p, "it is not in " + dir}
	case strings.Contains(base, "/"):
		return Path{}, &BadPathError{p, fmt.Sprintf("it points inside a store path; give the store path itself (%s)",
			Quote(dir+"/"+base[:strings.IndexByte(base, '/')]))}
	case len(base) < hashLen+2 || base[hashLen] != '-':
		return Path{}, &BadPathError{p, fmt.Sprintf("want %s/<32-character hash>-<name>", dir)}
	}
	digest, err := nixbase32.DecodeString(base[:hashLen])
	if err != nil {
		return Path{}, &BadPathError{p, fmt.Sprintf("its hash part %s is not nix-base32 (digits and lower-case letters except e, o, u, t)",
			Quote(base[:hashLen]))}
	}
	if err := checkName(p, base[hashLen+1:]); err != nil {
		return Path{}, err
	}
	return Path{StorePath: storepath.StorePath{Name: base[hashLen+1:], Digest: digest}, dir: dir, hash: base[:hashLen]}, nil
}

// ParseAbsolute parses p as a store path of whatever store directory it
// names (the directory above its base name): for store paths that come
// from elsewhere (a cache's pins, om ci results), whose store is not
// necessarily this machine's.
func ParseAbsolute(p string) (Path, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || path.Dir(p) == "/" {
		return Path{}, &BadPathError{p, "want an absolute path <store>/<32-character hash>-<name>"}
	}
	return ParsePath(path.Dir(p), p)
}

// String is the absolute path, e.g. /nix/store/<hash>-hello-2.12.1.
func (p Path) String() string { return p.dir + "/" + p.Base() }

// Dir is the store directory, e.g. /nix/store.
func (p Path) Dir() string { return p.dir }

// Base is the base name, <hash>-<name>.
func (p Path) Base() string { return p.hash + "-" + p.Name }

// Hash is the 32-character nix-base32 hash part.
func (p Path) Hash() string { return p.hash }

// HashPart returns the 32-character hash part of a store path already
// known to be one (a PathInfo's): the key binary caches file it under.
func HashPart(p string) string {
	base := path.Base(p)
	if len(base) < hashLen {
		return base
	}
	return base[:hashLen]
}

// NameOf is the name part of a store path already known to be one
// (/nix/store/<hash>-hello-2.12 → hello-2.12).
func NameOf(p string) string {
	base := path.Base(p)
	if len(base) > hashLen+1 {
		return base[hashLen+1:]
	}
	return base
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

// Within reports whether file lies inside one of the store directories
// dirs ("" entries are skipped; /nix/store is always among them): file
// made absolute and cleaned, or the file its symlinks lead to (on NixOS
// /etc/static/… points into the store), inside a directory or its own
// symlink-resolved form. It returns the offending form of file. Secrets
// must never be there: every user can read the store.
func Within(file string, dirs ...string) (string, bool) {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = filepath.Clean(file)
	}
	forms := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		forms = append(forms, real)
	}
	var all []string
	for _, d := range append(dirs, DefaultStoreDir) {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		all = append(all, d)
		if real, err := filepath.EvalSymlinks(d); err == nil && real != d {
			all = append(all, real)
		}
	}
	for _, d := range all {
		for _, p := range forms {
			if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
				return p, true
			}
		}
	}
	return "", false
}

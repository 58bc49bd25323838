// Package glob is the one name filter of the command line's --include and
// --exclude flags (pins, om ci outputs): path.Match patterns on a whole
// name, so "*" does not cross a "/".
package glob

import (
	"fmt"
	"path"
)

// Filter keeps the names that match one of its include patterns (every
// name, when there are none) and none of its exclude patterns: exclude
// wins.
type Filter struct {
	include, exclude []string
}

// New checks every pattern up front, so that a typo is an error even when
// no name reaches it. Its errors read `pattern "[": syntax error in pattern`.
func New(include, exclude []string) (*Filter, error) {
	for _, pats := range [][]string{include, exclude} {
		for _, pat := range pats {
			if _, err := path.Match(pat, ""); err != nil {
				return nil, fmt.Errorf("pattern %q: %w", pat, err)
			}
		}
	}
	return &Filter{include: include, exclude: exclude}, nil
}

// Match reports whether the filter keeps name.
func (f *Filter) Match(name string) bool {
	if matchesAny(name, f.exclude) {
		return false
	}
	return len(f.include) == 0 || matchesAny(name, f.include)
}

// matchesAny reports whether name matches one of pats (checked by New).
func matchesAny(name string, pats []string) bool {
	for _, pat := range pats {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

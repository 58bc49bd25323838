// Package dhall reads the cachix client's configuration file,
// $XDG_CONFIG_HOME/cachix/cachix.dhall, without a Dhall interpreter.
//
// `cachix authtoken`, `cachix generate-keypair` and `cachix config set` write
// a single record literal:
//
//	{ authToken = "…"
//	, hostname = "https://cachix.org"
//	, binaryCaches = [ { name = "mycache", secretKey = "…" } ]
//	}
//
// Parse understands the part of Dhall such a file can be written in:
// record literals (fields in any order, leading and trailing commas,
// `quoted` labels, {=}); text literals in both forms ("…" with all Dhall
// escapes, and multi-line literals between pairs of single quotes, with
// their escapes and indentation stripping); natural numbers; True and
// False; lists (an empty list needs its type annotation, as in Dhall);
// parentheses; type annotations built from Text, Bool, Natural, List and
// record types; line and nested block comments; a leading #! line.
// Interpolation, variables, functions, imports and operators are rejected,
// and so is spacing Dhall rejects (e.g. no space after an annotation's
// colon). A record field given twice is an error (Dhall would try to merge
// the two values, which fails for Text).
//
// Every field is optional and unknown fields are ignored, so a file with
// extra settings still works. Errors give line:column and what was expected,
// and never quote the file: it holds secrets.
package dhall

import (
	"fmt"
	"os"
)

// Config is what cachix.dhall says. A nil pointer means the field is absent;
// cachix then uses its default ("" token, "https://cachix.org" host).
type Config struct {
	AuthToken    *string
	Hostname     *string
	BinaryCaches []BinaryCache
}

// BinaryCache is one `binaryCaches` entry: a cache name and its signing key
// in Cachix's bare base64 form.
type BinaryCache struct {
	Name, SecretKey string
}

// SecretKey returns the secretKey of the last binaryCaches entry named name;
// the last one wins, as in cachix, so `cachix generate-keypair` run twice
// uses the newer key.
func (c *Config) SecretKey(name string) (string, bool) {
	for i := len(c.BinaryCaches) - 1; i >= 0; i-- {
		if c.BinaryCaches[i].Name == name {
			return c.BinaryCaches[i].SecretKey, true
		}
	}
	return "", false
}

// SyntaxError says where and why a file is not a cachix config this package
// understands. Msg is built from fixed phrases only and never quotes the
// input, so it is safe to show even when the file holds tokens.
type SyntaxError struct {
	Line, Column int // 1-based; Column counts characters
	Msg          string
}

// Error renders "line:column: message".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

// Parse reads a cachix.dhall document. Errors are *SyntaxError.
func Parse(src []byte) (*Config, error) {
	p := &parser{src: src}
	v, err := p.parseFile()
	if err != nil {
		return nil, err
	}
	return p.toConfig(v)
}

// Load reads and parses the file at path. A missing file gives an error
// matching errors.Is(err, fs.ErrNotExist); a malformed one wraps a
// *SyntaxError and names the file.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cachix config: %w", err)
	}
	c, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return c, nil
}

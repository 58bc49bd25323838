package dhall_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/cachix-select/cachix-select/pushlib/target/dhall"
)

// marker is replaced by the fuzzed secret in every fuzzed input.
const marker = "@S@"

// FuzzParse checks that Parse never panics, that its errors are always
// *SyntaxError, and that no error ever contains the secret planted in the
// input, wherever the fuzzer moves it (inside or outside literals).
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{ authToken = "@S@", hostname = "https://cachix.org", binaryCaches = [ { name = "c", secretKey = "@S@" } ] }`,
		"{ authToken =\n    \"@S@\"\n, binaryCaches = [] : List { name : Text, secretKey : Text }\n}\n",
		"{ authToken = ''\n    @S@\n    '' }",
		`{ authToken = "\u{41}@S@\n${x}" }`,
		`{ authToken = @S@ }`,
		`{ @S@ = "x", @S@ = "y" }`,
		"-- @S@\n{- {- @S@ -} -}\n{=}",
		`[ "@S@", 1 ] : List Text`,
		`{ authToken = "@S@" : Natural }`,
		"{ `@S@` = 0x@S@ }",
		"''\n@S@",
		`"@S@`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "Pl4nt3dS3cr3tT0k3n")
	}
	f.Fuzz(func(t *testing.T, src []byte, secret string) {
		secret = plantable(secret)
		in := bytes.ReplaceAll(src, []byte(marker), []byte(secret))
		_, err := dhall.Parse(in)
		if err == nil {
			return
		}
		var se *dhall.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("error %v is a %T, want *dhall.SyntaxError", err, err)
		}
		if se.Line < 1 || se.Column < 1 {
			t.Fatalf("error %v has an invalid position", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q contains the planted secret %q", err, secret)
		}
	})
}

// plantable turns a fuzzed string into a secret no fixed error phrase can
// contain by accident: only letters and digits, at least 12 of them, with
// both kinds present. Anything else falls back to a fixed secret.
func plantable(s string) string {
	var b strings.Builder
	letter, digit := false, false
	for _, r := range s {
		switch {
		case r < 0x80 && unicode.IsLetter(r):
			letter = true
		case r < 0x80 && unicode.IsDigit(r):
			digit = true
		default:
			continue
		}
		b.WriteRune(r)
	}
	if b.Len() < 12 || !letter || !digit {
		return "Pl4nt3dS3cr3tT0k3n"
	}
	return b.String()
}

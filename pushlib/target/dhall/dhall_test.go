package dhall_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/target/dhall"
)

// planted stands for a token or key in test inputs; no error may show it.
const planted = "Pl4nt3dS3cr3tT0k3n"

// ptr returns a pointer to s, for expected optional fields.
func ptr(s string) *string { return &s }

// binaryCacheType is the annotation cachix writes on an empty list.
const binaryCacheType = "List { name : Text, secretKey : Text }"

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want *dhall.Config
	}{
		{
			name: "written by cachix generate-keypair (dhall pretty-printer layout)",
			src: `{ authToken =
    "eyJhbGciOiJIUzI1NiJ9.` + planted + `.sig"
, hostname = "https://cachix.org"
, binaryCaches =
  [ { name = "mycache"
    , secretKey =
        "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA=="
    }
  ]
}
`,
			want: &dhall.Config{
				AuthToken: ptr("eyJhbGciOiJIUzI1NiJ9." + planted + ".sig"),
				Hostname:  ptr("https://cachix.org"),
				BinaryCaches: []dhall.BinaryCache{{
					Name:      "mycache",
					SecretKey: "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyB5tVYuj+ZU+UB4sRLoqYunkB+FOuaVvtfg45ELrQSWZA==",
				}},
			},
		},
		{
			name: "written by cachix authtoken: typed empty list",
			src: `{ authToken = "tok"
, hostname = "https://cachix.org"
, binaryCaches = [] : List { name : Text, secretKey : Text }
}
`,
			want: &dhall.Config{AuthToken: ptr("tok"), Hostname: ptr("https://cachix.org"), BinaryCaches: []dhall.BinaryCache{}},
		},
		{
			name: "without binaryCaches, fields in another order",
			src:  `{ hostname = "https://example.org", authToken = "tok" }`,
			want: &dhall.Config{AuthToken: ptr("tok"), Hostname: ptr("https://example.org")},
		},
		{
			name: "empty record literal",
			src:  "{=}",
			want: &dhall.Config{},
		},
		{
			name: "empty record literal with spaces and comma",
			src:  "{ = , }",
			want: &dhall.Config{},
		},
		{
			name: "empty token is kept as given",
			src:  `{ authToken = "" }`,
			want: &dhall.Config{AuthToken: ptr("")},
		},
		{
			name: "comments everywhere, nested block comment, comment at EOF without newline",
			src: `#!/usr/bin/env dhall
-- cachix config
{- outer {- inner -} still a comment -}
{ {- a -} authToken {- b -} = {- c -} "tok" -- after
, -- between
  binaryCaches = [ -- inside
  ] : {- type -} List { name : Text, secretKey : Text }
} -- the end`,
			want: &dhall.Config{AuthToken: ptr("tok"), BinaryCaches: []dhall.BinaryCache{}},
		},
		{
			name: "escapes",
			src:  `{ authToken = "q\" b\\ s\/ \b\f\n\r\t d\$ \u00e9\u00E9 \u{1F600} \u{0000041} \u{0}" }`,
			want: &dhall.Config{AuthToken: ptr("q\" b\\ s/ \b\f\n\r\t d$ éé 😀 A \x00")},
		},
		{
			name: "dollar without brace is plain text",
			src:  `{ authToken = "a$b$" }`,
			want: &dhall.Config{AuthToken: ptr("a$b$")},
		},
		{
			name: "non-ASCII characters",
			src:  `{ hostname = "https://ünïcödé.example/ключ" }`,
			want: &dhall.Config{Hostname: ptr("https://ünïcödé.example/ключ")},
		},
		{
			name: "multi-line literal, indentation stripped up to the closing line",
			src:  "{ authToken =\n    ''\n    line1\n      line2\n    ''\n}",
			want: &dhall.Config{AuthToken: ptr("line1\n  line2\n")},
		},
		{
			name: "multi-line literal closing at column 0 keeps indentation",
			src:  "{ authToken = ''\n  foo\n  bar\n''\n}",
			want: &dhall.Config{AuthToken: ptr("  foo\n  bar\n")},
		},
		{
			name: "multi-line literal on one content line, no trailing newline",
			src:  "{ authToken = ''\n    " + planted + "''\n}",
			want: &dhall.Config{AuthToken: ptr(planted)},
		},
		{
			name: "multi-line literal: empty lines do not count, whitespace-only lines do",
			src:  "{ a = ''\n    x\n\n    y\n    '', b = ''\n    x\n  \n    y\n    '', authToken = ''\n    x\n\n    y\n    '' }",
			want: &dhall.Config{AuthToken: ptr("x\n\ny\n")},
		},
		{
			name: "multi-line literal: tabs and spaces share only a common prefix",
			src:  "{ authToken = ''\n\t  a\n\t b\n\t''}",
			want: &dhall.Config{AuthToken: ptr("  a\n b\n")},
		},
		{
			name: "multi-line escapes and quotes",
			src:  "{ authToken = ''\n  it's '''quoted''' and ''${not interpolated}\n  ''}",
			want: &dhall.Config{AuthToken: ptr("it's ''quoted'' and ${not interpolated}\n")},
		},
		{
			name: "multi-line literal with CRLF line endings",
			src:  "{ authToken = ''\r\n  a\r\n  b''\r\n}\r\n",
			want: &dhall.Config{AuthToken: ptr("a\nb")},
		},
		{
			name: "CRLF file",
			src:  "{ authToken = \"tok\"\r\n, hostname = \"h\"\r\n}\r\n",
			want: &dhall.Config{AuthToken: ptr("tok"), Hostname: ptr("h")},
		},
		{
			name: "duplicate cache entries are all kept in order",
			src: `{ binaryCaches =
  [ { name = "a", secretKey = "old" }
  , { name = "b", secretKey = "other" }
  , { secretKey = "new", name = "a" }
  ]
}`,
			want: &dhall.Config{BinaryCaches: []dhall.BinaryCache{{"a", "old"}, {"b", "other"}, {"a", "new"}}},
		},
		{
			name: "unknown fields of several kinds are ignored",
			src: `{ authToken = "tok"
, version = 2
, hex = 0x2A
, bin = 0b101
, zero = 0
, enabled = True
, nested = { a = [ False ], b = {=}, c = "x" }
, strings = [ "a", "b" ] : List Text
, nothing = [] : List Natural
}`,
			want: &dhall.Config{AuthToken: ptr("tok")},
		},
		{
			name: "annotation on the whole record",
			src: `{ authToken = "tok", hostname = "h", binaryCaches = [] : List { name : Text, secretKey : Text } }
  : { authToken : Text, hostname : Text, binaryCaches : List { name : Text, secretKey : Text } }`,
			want: &dhall.Config{AuthToken: ptr("tok"), Hostname: ptr("h"), BinaryCaches: []dhall.BinaryCache{}},
		},
		{
			name: "annotation on a non-empty list and on a text",
			src:  `{ hostname = "h" : Text, binaryCaches = [ { name = "c", secretKey = "k" } ] : List { secretKey : Text, name : Text } }`,
			want: &dhall.Config{Hostname: ptr("h"), BinaryCaches: []dhall.BinaryCache{{"c", "k"}}},
		},
		{
			name: "parentheses and quoted labels",
			src:  "( { `authToken` = (\"tok\"), binaryCaches = ([] : (List ({ name : Text, `secretKey` : Text }))) } )",
			want: &dhall.Config{AuthToken: ptr("tok"), BinaryCaches: []dhall.BinaryCache{}},
		},
		{
			name: "leading and trailing commas",
			src:  `{ , authToken = "tok", binaryCaches = [ , { name = "c", secretKey = "k", }, ], }`,
			want: &dhall.Config{AuthToken: ptr("tok"), BinaryCaches: []dhall.BinaryCache{{"c", "k"}}},
		},
		{
			name: "empty list with a comma inside",
			src:  "{ binaryCaches = [ , ] : " + binaryCacheType + " }",
			want: &dhall.Config{BinaryCaches: []dhall.BinaryCache{}},
		},
		{
			name: "binaryCaches entries with extra fields are accepted",
			src:  `{ binaryCaches = [ { name = "c", secretKey = "k", note = "x" } ] }`,
			want: &dhall.Config{BinaryCaches: []dhall.BinaryCache{{"c", "k"}}},
		},
		{
			name: "Some and quoted keywords as field names, nested list types",
			src:  "{ Some = 1, `then` = 2, lists = [] : List (List Text), authToken = \"tok\" }",
			want: &dhall.Config{AuthToken: ptr("tok")},
		},
		{
			name: "whitespace after colon may be a comment",
			src:  `{ authToken = "tok" :{- c -}Text }`,
			want: &dhall.Config{AuthToken: ptr("tok")},
		},
		{
			name: "tabs as whitespace",
			src:  "{\tauthToken\t=\t\"tok\"\t}",
			want: &dhall.Config{AuthToken: ptr("tok")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := dhall.Parse([]byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse = %s, want %s", show(got), show(tt.want))
			}
		})
	}
}

// show renders a Config for failure messages (tests only hold fake secrets).
func show(c *dhall.Config) string {
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return strconv.Quote(*p)
	}
	return fmt.Sprintf("{AuthToken: %s, Hostname: %s, BinaryCaches: %#v}", s(c.AuthToken), s(c.Hostname), c.BinaryCaches)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		wantPos string // "line:column"
		wantMsg string // a substring of the message
	}{
		{"empty file", "", "1:1", "expected a value, found end of file"},
		{"only a comment", "-- nothing\n", "2:1", "expected a value"},
		{"unterminated text", "{ authToken = \"" + planted, "1:15", "unterminated text literal"},
		{"raw newline in text", "{ authToken = \"" + planted + "\n\" }", "1:34", "raw control character"},
		{"raw tab in text", "{ authToken = \"a\tb\" }", "1:17", "raw control character"},
		{"interpolation in text", "{ authToken = \"" + planted + "${x}\" }", "1:34", "interpolation"},
		{"interpolation in multi-line text", "{ authToken = ''\n  " + planted + "${x}\n  '' }", "2:21", "interpolation"},
		{"multi-line text without line break", "{ authToken = ''" + planted + "'' }", "1:15", "line break right after"},
		{"unterminated multi-line text", "{ authToken = ''\n" + planted, "1:15", "unterminated"},
		{"invalid escape", `{ authToken = "ab\x` + planted + `" }`, "1:18", "invalid escape sequence"},
		{"surrogate escape", `{ authToken = "\uD800` + planted + `" }`, "1:16", `invalid \u escape`},
		{"short unicode escape", `{ authToken = "\u12" }`, "1:16", `invalid \u escape`},
		{"too large braced escape", `{ authToken = "\u{110000}" }`, "1:16", `invalid \u escape`},
		{"too many braced digits", `{ authToken = "\u{0001000000}" }`, "1:16", `invalid \u escape`},
		{"non-character escape", `{ authToken = "\u{FFFE}" }`, "1:16", `invalid \u escape`},
		{"empty braced escape", `{ authToken = "\u{}" }`, "1:16", `invalid \u escape`},
		{"unquoted token", "{ authToken = " + planted + " }", "1:15", "variables, functions and imports are not supported"},
		{"import", "{ authToken = ./token.txt }", "1:15", "expected a value"},
		{"env import", "{ authToken = env:CACHIX_TOKEN as Text }", "1:15", "not supported"},
		{"operator", `{ authToken = "a" ++ "` + planted + `" }`, "1:19", "expected ',' or '}' after a record field, found '+'"},
		{"missing comma", "{ authToken = \"" + planted + "\"\n  hostname = \"h\" }", "2:3", "expected ',' or '}' after a record field, found a letter"},
		{"missing equals", `{ authToken "` + planted + `" }`, "1:13", "expected '=' after a field name"},
		{"record type instead of literal", "{ authToken : Text }", "1:13", "record type"},
		{"empty record type", "{}", "1:1", "empty record type"},
		{"dotted field", `{ a.b = "` + planted + `" }`, "1:4", "dotted"},
		{"duplicate known field", `{ authToken = "a", authToken = "` + planted + `" }`, "1:20", "duplicate field authToken"},
		{"duplicate unknown field is not named", `{ ` + planted + ` = "a", ` + planted + ` = "b" }`, "1:29", "duplicate field"},
		{"top level is a list", `[ "` + planted + `" ]`, "1:1", "expected a record literal"},
		{"top level is text", `"` + planted + `"`, "1:1", "expected a record literal"},
		{"authToken not text", "{ authToken = 42 }", "1:15", "authToken must be a text literal"},
		{"hostname not text", "{ hostname = [ \"h\" ] }", "1:14", "hostname must be a text literal"},
		{"binaryCaches not a list", `{ binaryCaches = "` + planted + `" }`, "1:18", "binaryCaches must be a List"},
		{"binaryCaches of texts", `{ binaryCaches = [ "` + planted + `" ] }`, "1:18", "binaryCaches must be a List"},
		{"binaryCaches wrongly typed empty list", "{ binaryCaches = [] : List Text }", "1:18", "binaryCaches must be a List"},
		{"binaryCaches entry without secretKey", `{ binaryCaches = [ { name = "c" } ] }`, "1:18", "binaryCaches must be a List"},
		{"secretKey not text", `{ binaryCaches = [ { name = "c", secretKey = 1 } ] }`, "1:18", "binaryCaches must be a List"},
		{"empty list without annotation", "{ binaryCaches = [] }", "1:18", "needs a type annotation"},
		{"empty list annotated with a non-list", "{ binaryCaches = [] : Text }", "1:21", "must be annotated with a List type"},
		{"list elements of different types", `{ x = [ "` + planted + `", 1 ] }`, "1:31", "same type"},
		{"annotation mismatch", `{ authToken = "` + planted + `" : Natural }`, "1:36", "does not match its type annotation"},
		{"unsupported type", `{ authToken = "` + planted + `" : Optional Text }`, "1:38", "unsupported type"},
		{"missing type", `{ authToken = "` + planted + `" : }`, "1:38", "expected a type, found '}'"},
		{"unterminated block comment", "{- " + planted + " {- -}\n{=}", "1:1", "unterminated block comment"},
		{"trailing garbage", "{=} " + planted, "1:5", "expected end of file, found a letter"},
		{"second expression", "{=} {=}", "1:5", "expected end of file, found '{'"},
		{"lone carriage return", "{=}\r ", "1:4", "carriage return"},
		{"control character in comment", "-- \x01\n{=}", "1:4", "control character in a comment"},
		{"invalid UTF-8", "{ authToken = \"" + planted + "\xff\" }", "1:34", "not valid UTF-8"},
		{"non-character", "{ authToken = \"\uFFFF\" }", "1:16", "non-character"},
		{"malformed number", "{ n = 1.5 }", "1:7", "number"},
		{"leading zero", "{ n = 01 }", "1:7", "number"},
		{"bare hex prefix", "{ n = 0x }", "1:7", "number"},
		{"unterminated quoted label", "{ `" + planted + " = 1 }", "1:3", "unterminated `quoted` label"},
		{"missing close paren", `( { authToken = "` + planted + `" }`, "1:39", "expected ')'"},
		{"missing close bracket", `{ x = [ "` + planted + `"`, "1:29", "expected ',' or ']'"},
		{"Some is not supported", `{ authToken = Some "` + planted + `" }`, "1:15", "not supported"},
		{"nesting too deep", strings.Repeat("[", 200), "1:65", "nesting too deep"},
		{"List applied to List", "{ x = [] : List List Text }", "1:17", "List as an argument needs parentheses"},
		{"deep type", "{ x = [] : " + strings.Repeat("List (", 100) + "Text" + strings.Repeat(")", 100) + " }", "1:", "nesting too deep"},
		{"keyword as label", `{ then = "` + planted + `" }`, "1:3", "keyword"},
		{"no space after annotation colon", `{ authToken = "` + planted + `" :Text }`, "1:37", "expected whitespace after ':'"},
		{"no space after List", "{ binaryCaches = [] : List{ name : Text, secretKey : Text } }", "1:27", "expected whitespace after List"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := dhall.Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %s, want an error", show(got))
			}
			var se *dhall.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is a %T, want *dhall.SyntaxError", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantPos) {
				t.Errorf("error %q does not start with position %s", msg, tt.wantPos)
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not mention %q", msg, tt.wantMsg)
			}
			if strings.Contains(msg, planted) || strings.Contains(msg, planted[:8]) {
				t.Errorf("error %q leaks the secret", msg)
			}
		})
	}
}

func TestSecretKeyLastWins(t *testing.T) {
	t.Parallel()
	c, err := dhall.Parse([]byte(`{ binaryCaches =
  [ { name = "mycache", secretKey = "first" }
  , { name = "other", secretKey = "x" }
  , { name = "mycache", secretKey = "second" }
  , { name = "third", secretKey = "y" }
  ] }`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"mycache", "second", true},
		{"other", "x", true},
		{"missing", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := c.SecretKey(tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("SecretKey(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.dhall")
	bad := filepath.Join(dir, "bad.dhall")
	if err := os.WriteFile(good, []byte(`{ authToken = "tok" }`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{ authToken = `+planted+` }`), 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := dhall.Load(good)
	if err != nil || c.AuthToken == nil || *c.AuthToken != "tok" {
		t.Errorf("Load(good) = %v, %v; want authToken tok", c, err)
	}

	_, err = dhall.Load(filepath.Join(dir, "missing.dhall"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}

	_, err = dhall.Load(bad)
	var se *dhall.SyntaxError
	if !errors.As(err, &se) || se.Line != 1 || se.Column != 15 {
		t.Errorf("Load(bad) error = %v, want a SyntaxError at 1:15", err)
	}
	if err != nil && (!strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), planted)) {
		t.Errorf("Load(bad) error %q should name the file and not leak the secret", err)
	}
}

func TestColumnsCountCharacters(t *testing.T) {
	t.Parallel()
	// "é" is two bytes but one column.
	_, err := dhall.Parse([]byte("{ hostname = \"é\", x }"))
	var se *dhall.SyntaxError
	if !errors.As(err, &se) || se.Line != 1 || se.Column != 21 {
		t.Errorf("error = %v, want a SyntaxError at 1:21", err)
	}
}

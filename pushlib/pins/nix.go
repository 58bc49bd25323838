package pins

import (
	"regexp"
	"strings"
)

// nixIdentifier is what the Nix lexer reads as a bare identifier.
var nixIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

// nixKeywords cannot be bare attribute names.
var nixKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "assert": true, "with": true,
	"let": true, "in": true, "rec": true, "inherit": true, "or": true,
}

// nixAttrName renders an attribute name: bare when Nix allows it, else a
// quoted string ("x86_64-linux" stays bare, "1password" and "a b" do not).
func nixAttrName(name string) string {
	if nixIdentifier.MatchString(name) && !nixKeywords[name] {
		return name
	}
	return nixString(name)
}

// nixString renders s as a double-quoted Nix string whose value is exactly
// s. Every "$" is escaped, which also defuses "${" and "$${" (interpolation
// and its escape); bytes are copied as they are otherwise.
func nixString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// nixList renders strings as a Nix list, one item a line, the items
// indented by indent and the closing bracket by indent minus two spaces.
func nixList(items []string, indent string) string {
	if len(items) == 0 {
		return "[ ]"
	}
	var b strings.Builder
	b.WriteString("[\n")
	for _, s := range items {
		b.WriteString(indent + nixString(s) + "\n")
	}
	b.WriteString(strings.TrimPrefix(indent, "  ") + "]")
	return b.String()
}

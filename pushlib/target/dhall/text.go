package dhall

import (
	"strings"
	"unicode/utf8"
)

// doubleQuoted parses a "…" text literal with Dhall's escapes. Raw control
// characters (including line breaks) are not allowed, as in Dhall.
func (p *parser) doubleQuoted() (string, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return "", p.fail(start, `unterminated text literal: missing closing "`)
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		case c == '$' && p.hasAt(p.pos+1, "{"):
			return "", p.fail(p.pos, `text interpolation ${…} is not supported in cachix.dhall (write \${ for a literal ${)`)
		case c < 0x20:
			return "", p.fail(p.pos, `raw control character (line break, tab, …) in a "…" text literal; use an escape such as \n or a '' multi-line literal`)
		case c < 0x80:
			b.WriteByte(c)
			p.pos++
		default:
			from := p.pos
			if err := p.nonASCII(); err != nil {
				return "", err
			}
			b.Write(p.src[from:p.pos])
		}
	}
}

// escape decodes one backslash escape of a "…" literal into b.
func (p *parser) escape(b *strings.Builder) error {
	at := p.pos
	p.pos++
	if p.pos >= len(p.src) {
		return p.fail(at, "unterminated escape sequence")
	}
	c := p.src[p.pos]
	p.pos++
	switch c {
	case '"', '$', '\\', '/':
		b.WriteByte(c)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, err := p.unicodeEscape(at)
		if err != nil {
			return err
		}
		b.WriteRune(r)
	default:
		return p.fail(at, `invalid escape sequence (Dhall has \" \$ \\ \/ \b \f \n \r \t \uXXXX \u{X…})`)
	}
	return nil
}

// unicodeEscape decodes the part after `\u`: four hex digits or braces
// around one or more (leading zeros allowed, at most six significant). The
// code point must be a Unicode scalar value and not a non-character.
func (p *parser) unicodeEscape(at int) (rune, error) {
	bad := func() error {
		return p.fail(at, `invalid \u escape: need \uXXXX or \u{X…} naming a Unicode character (no surrogates or non-characters)`)
	}
	cp, digits := 0, 0
	if p.has("{") {
		p.pos++
		significant := 0
		for p.pos < len(p.src) && isHex(p.src[p.pos]) {
			d := hexValue(p.src[p.pos])
			p.pos++
			digits++
			if cp == 0 && d == 0 {
				continue // zero padding
			}
			if significant++; significant > 6 {
				return 0, bad()
			}
			cp = cp*16 + d
		}
		if digits == 0 || !p.has("}") {
			return 0, bad()
		}
		p.pos++
	} else {
		for ; digits < 4; digits++ {
			if p.pos >= len(p.src) || !isHex(p.src[p.pos]) {
				return 0, bad()
			}
			cp = cp*16 + hexValue(p.src[p.pos])
			p.pos++
		}
	}
	if cp > utf8.MaxRune || (cp >= 0xD800 && cp <= 0xDFFF) || cp&0xFFFE == 0xFFFE {
		return 0, bad()
	}
	return rune(cp), nil
}

// multiLine parses a multi-line literal, written between two pairs of
// single quotes. The opening pair must end its line; three single quotes
// stand for two, and two single quotes before ${ stand for ${; CRLF becomes
// LF; the longest common indentation is stripped (see dedent).
func (p *parser) multiLine() (string, error) {
	start := p.pos
	p.pos += 2
	switch {
	case p.has("\n"):
		p.pos++
	case p.has("\r\n"):
		p.pos += 2
	default:
		return "", p.fail(start, "a '' multi-line text literal must have a line break right after the opening ''")
	}
	var b []byte
	for {
		if p.pos >= len(p.src) {
			return "", p.fail(start, "unterminated '' multi-line text literal: missing closing ''")
		}
		c := p.src[p.pos]
		switch {
		case p.has("'''"):
			b = append(b, "''"...)
			p.pos += 3
		case p.has("''${"):
			b = append(b, "${"...)
			p.pos += 4
		case p.has("''"):
			p.pos += 2
			return dedent(string(b)), nil
		case p.has("${"):
			return "", p.fail(p.pos, "text interpolation ${…} is not supported in cachix.dhall (write ''${ for a literal ${)")
		case p.has("\r\n"):
			b = append(b, '\n')
			p.pos += 2
		case c == '\n' || c == '\t' || (c >= 0x20 && c < 0x80):
			b = append(b, c)
			p.pos++
		case c < 0x20:
			return "", p.fail(p.pos, "control character in a '' multi-line text literal")
		default:
			from := p.pos
			if err := p.nonASCII(); err != nil {
				return "", err
			}
			b = append(b, p.src[from:p.pos]...)
		}
	}
}

// dedent applies Dhall's indentation rule to a multi-line literal's
// content: strip the longest run of spaces and tabs shared by every line,
// where empty lines do not count except the last one (the line holding the
// closing quotes). Escapes never produce spaces or tabs, so applying it after
// decoding them gives the same result as the standard's order.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	prefix, first := "", true
	for i, l := range lines {
		if l == "" && i != len(lines)-1 {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ind, false
			continue
		}
		n := 0
		for n < len(prefix) && n < len(ind) && prefix[n] == ind[n] {
			n++
		}
		prefix = prefix[:n]
	}
	for i, l := range lines {
		if len(l) >= len(prefix) {
			lines[i] = l[len(prefix):]
		}
	}
	return strings.Join(lines, "\n")
}

// hexValue converts one hex digit (already checked by isHex).
func hexValue(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

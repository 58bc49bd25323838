package dhall

import (
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds nesting of lists, records, parentheses and types, so a
// hostile file cannot exhaust the stack.
const maxDepth = 64

// kind is the shape of a value or type the parser understands.
type kind int

const (
	kindText kind = iota + 1
	kindNatural
	kindBool
	kindList
	kindRecord
)

// typ is a Dhall type from the supported subset; it lets the parser check
// annotations and list homogeneity the way Dhall's type checker would.
type typ struct {
	kind   kind
	elem   *typ            // kindList
	fields map[string]*typ // kindRecord
}

// equal reports structural type equality (field order does not matter).
func (a *typ) equal(b *typ) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kindList:
		return a.elem.equal(b.elem)
	case kindRecord:
		if len(a.fields) != len(b.fields) {
			return false
		}
		for name, t := range a.fields {
			u, ok := b.fields[name]
			if !ok || !t.equal(u) {
				return false
			}
		}
	}
	return true
}

// field is one record-literal entry, kept in source order.
type field struct {
	name string
	val  *value
}

// value is a parsed expression: its position (for errors), its type, and
// the data this package needs (text, list elements, record fields).
type value struct {
	pos    int
	typ    *typ // nil only for an empty list that still awaits its annotation
	text   string
	elems  []*value
	fields []field
}

// get returns the record field called name.
func (v *value) get(name string) (*value, bool) {
	for _, f := range v.fields {
		if f.name == name {
			return f.val, true
		}
	}
	return nil, false
}

// parser is a hand-written recursive-descent parser over the raw bytes; Dhall
// cannot be tokenised up front (nested comments, text literals).
type parser struct {
	src   []byte
	pos   int
	depth int
}

// fail builds a SyntaxError at byte offset pos. msg must be a fixed phrase:
// it must never contain text taken from the input.
func (p *parser) fail(pos int, msg string) error {
	line, col := 1, 1
	for i := 0; i < pos && i < len(p.src); {
		r, n := utf8.DecodeRune(p.src[i:])
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return &SyntaxError{Line: line, Column: col, Msg: msg}
}

// found describes the character at the cursor by its class only, so error
// messages stay useful without quoting a possibly secret input.
func (p *parser) found() string {
	if p.pos >= len(p.src) {
		return "found end of file"
	}
	c := p.src[p.pos]
	switch {
	case c == '\n' || c == '\r':
		return "found a line break"
	case isLabelStart(c):
		return "found a letter"
	case isDigit(c):
		return "found a digit"
	case c < 0x20 || c == 0x7f:
		return "found a control character"
	case c >= 0x80:
		return "found a non-ASCII character"
	}
	return fmt.Sprintf("found '%c'", c)
}

// has reports whether the input continues with s at the cursor.
func (p *parser) has(s string) bool {
	return p.hasAt(p.pos, s)
}

// hasAt reports whether the input continues with s at offset i.
func (p *parser) hasAt(i int, s string) bool {
	return i+len(s) <= len(p.src) && string(p.src[i:i+len(s)]) == s
}

// enter counts one nesting level and fails past maxDepth; leave undoes it.
func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.fail(p.pos, "nesting too deep")
	}
	return nil
}

// leave ends a nesting level opened by enter.
func (p *parser) leave() { p.depth-- }

// parseFile parses a whole document: optional #! lines, whitespace, one
// expression, whitespace, end of input.
func (p *parser) parseFile() (*value, error) {
	if !utf8.Valid(p.src) {
		for i := 0; i < len(p.src); {
			r, n := utf8.DecodeRune(p.src[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, p.fail(i, "the file is not valid UTF-8")
			}
			i += n
		}
	}
	for p.has("#!") {
		for p.pos < len(p.src) && p.src[p.pos] != '\n' {
			p.pos++
		}
		p.pos++
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	v, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, p.fail(p.pos, "expected end of file, "+p.found())
	}
	return v, nil
}

// space skips whitespace and comments, validating what comments may hold.
func (p *parser) space() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			p.pos++
		case c == '\r':
			if !p.hasAt(p.pos+1, "\n") {
				return p.fail(p.pos, "a carriage return must be followed by a line feed")
			}
			p.pos += 2
		case p.has("--"):
			if err := p.lineComment(); err != nil {
				return err
			}
		case p.has("{-"):
			if err := p.blockComment(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// space1 is space where Dhall demands at least some whitespace (after an
// annotation's colon, between List and its argument); after names what
// must be followed by it.
func (p *parser) space1(after string) error {
	start := p.pos
	if err := p.space(); err != nil {
		return err
	}
	if p.pos == start {
		return p.fail(p.pos, "expected whitespace after "+after+", "+p.found())
	}
	return nil
}

// lineComment skips "-- …" up to and including the line break; the last
// line of a file may end without one.
func (p *parser) lineComment() error {
	p.pos += 2
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.pos++
			return nil
		case c == '\r':
			if !p.hasAt(p.pos+1, "\n") {
				return p.fail(p.pos, "a carriage return must be followed by a line feed")
			}
			p.pos += 2
			return nil
		default:
			if err := p.commentChar(); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockComment skips "{- … -}", which nests.
func (p *parser) blockComment() error {
	start := p.pos
	p.pos += 2
	for depth := 1; depth > 0; {
		switch {
		case p.pos >= len(p.src):
			return p.fail(start, "unterminated block comment: missing -}")
		case p.has("-}"):
			depth--
			p.pos += 2
		case p.has("{-"):
			depth++
			p.pos += 2
		case p.has("\n"):
			p.pos++
		case p.has("\r\n"):
			p.pos += 2
		default:
			if err := p.commentChar(); err != nil {
				return err
			}
		}
	}
	return nil
}

// commentChar accepts one character allowed inside a comment (tab or
// printable) and advances past it.
func (p *parser) commentChar() error {
	c := p.src[p.pos]
	switch {
	case c == '\t' || (c >= 0x20 && c < 0x80):
		p.pos++
		return nil
	case c < 0x20:
		return p.fail(p.pos, "control character in a comment")
	}
	return p.nonASCII()
}

// nonASCII accepts one multi-byte character, rejecting the Unicode
// non-characters Dhall forbids (U+xFFFE, U+xFFFF).
func (p *parser) nonASCII() error {
	r, n := utf8.DecodeRune(p.src[p.pos:])
	if r&0xFFFE == 0xFFFE {
		return p.fail(p.pos, "Unicode non-character")
	}
	p.pos += n
	return nil
}

// expr parses an operand with an optional type annotation. An empty list
// must be annotated, as in Dhall.
func (p *parser) expr() (*value, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	v, err := p.operand()
	if err != nil {
		return nil, err
	}
	if err := p.space(); err != nil {
		return nil, err
	}
	if p.has(":") && !p.has("::") {
		colon := p.pos
		p.pos++
		if err := p.space1("':'"); err != nil {
			return nil, err
		}
		t, err := p.typeExpr()
		if err != nil {
			return nil, err
		}
		switch {
		case v.typ == nil && t.kind != kindList:
			return nil, p.fail(colon, "an empty list must be annotated with a List type")
		case v.typ == nil:
			v.typ = t
		case !v.typ.equal(t):
			return nil, p.fail(colon, "the value does not match its type annotation")
		}
	}
	if v.typ == nil {
		return nil, p.fail(v.pos, "an empty list needs a type annotation, such as [] : List { name : Text, secretKey : Text }")
	}
	return v, nil
}

// operand parses one value: text, natural, Bool, list, record or a
// parenthesised expression.
func (p *parser) operand() (*value, error) {
	start := p.pos
	switch {
	case p.pos >= len(p.src):
		return nil, p.fail(p.pos, "expected a value, found end of file")
	case p.has(`"`):
		s, err := p.doubleQuoted()
		return &value{pos: start, typ: &typ{kind: kindText}, text: s}, err
	case p.has("''"):
		s, err := p.multiLine()
		return &value{pos: start, typ: &typ{kind: kindText}, text: s}, err
	case p.has("{"):
		return p.record()
	case p.has("["):
		return p.list()
	case p.has("("):
		return parenthesized(p, p.expr)
	case isDigit(p.src[p.pos]):
		return p.natural()
	case isLabelStart(p.src[p.pos]) || p.has("`"):
		name, err := p.label()
		if err != nil {
			return nil, err
		}
		if name == "True" || name == "False" {
			return &value{pos: start, typ: &typ{kind: kindBool}}, nil
		}
		return nil, p.fail(start, "expected a value; variables, functions and imports are not supported")
	}
	return nil, p.fail(start, "expected a value (a text literal, list or record), "+p.found())
}

// natural parses a natural-number literal (decimal, 0x hex or 0b binary);
// only its syntax matters, since no field this package reads is a number.
func (p *parser) natural() (*value, error) {
	start := p.pos
	digits := func(ok func(byte) bool) int {
		n := 0
		for p.pos < len(p.src) && ok(p.src[p.pos]) {
			p.pos++
			n++
		}
		return n
	}
	n := 1
	switch {
	case p.has("0x"):
		p.pos += 2
		n = digits(isHex)
	case p.has("0b"):
		p.pos += 2
		n = digits(func(c byte) bool { return c == '0' || c == '1' })
	case p.has("0"):
		p.pos++
	default:
		digits(isDigit)
	}
	if n == 0 || (p.pos < len(p.src) && (isLabelChar(p.src[p.pos]) || p.src[p.pos] == '.')) {
		return nil, p.fail(start, "malformed or unsupported number: only natural numbers such as 0, 42 or 0x2A are understood")
	}
	return &value{pos: start, typ: &typ{kind: kindNatural}}, nil
}

// label parses a field name, plain or `quoted`.
func (p *parser) label() (string, error) {
	start := p.pos
	if p.has("`") {
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] != '`' {
			if c := p.src[p.pos]; c < 0x20 || c > 0x7e {
				return "", p.fail(p.pos, "invalid character in a `quoted` label")
			}
			p.pos++
		}
		if p.pos >= len(p.src) {
			return "", p.fail(start, "unterminated `quoted` label")
		}
		p.pos++
		return string(p.src[start+1 : p.pos-1]), nil
	}
	if p.pos >= len(p.src) || !isLabelStart(p.src[p.pos]) {
		return "", p.fail(p.pos, "expected a field name, "+p.found())
	}
	for p.pos < len(p.src) && isLabelChar(p.src[p.pos]) {
		p.pos++
	}
	name := string(p.src[start:p.pos])
	if isKeyword(name) {
		return "", p.fail(start, "a Dhall keyword cannot be used as a name here (quote it with backticks)")
	}
	return name, nil
}

// isKeyword reports Dhall's reserved words, which are not labels unless
// quoted (Some is allowed as a field name, so it is not listed).
func isKeyword(name string) bool {
	switch name {
	case "if", "then", "else", "let", "in", "using", "missing", "assert", "as",
		"Infinity", "NaN", "merge", "toMap", "forall", "with", "showConstructor":
		return true
	}
	return false
}

// record parses a record literal; a record type here is an error because
// a cachix config is a value.
func (p *parser) record() (*value, error) {
	start := p.pos
	p.pos++
	if err := p.leadingComma(); err != nil {
		return nil, err
	}
	v := &value{pos: start, typ: &typ{kind: kindRecord, fields: map[string]*typ{}}}
	if p.has("=") { // {=}, the empty record literal
		p.pos++
		if err := p.leadingComma(); err != nil {
			return nil, err
		}
		if !p.has("}") {
			return nil, p.fail(p.pos, "expected '}' after '{=', "+p.found())
		}
		p.pos++
		return v, nil
	}
	if p.has("}") {
		return nil, p.fail(start, "expected a record literal, found the empty record type {} (the empty record literal is {=})")
	}
	for {
		namePos := p.pos
		name, err := p.label()
		if err != nil {
			return nil, err
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		switch {
		case p.has(":"):
			return nil, p.fail(p.pos, "expected '=' after a field name (this is a record type, not a record literal)")
		case p.has("."):
			return nil, p.fail(p.pos, "dotted field names (a.b = …) are not supported")
		case !p.has("="):
			return nil, p.fail(p.pos, "expected '=' after a field name, "+p.found())
		}
		p.pos++
		if err := p.space(); err != nil {
			return nil, err
		}
		fv, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, dup := v.typ.fields[name]; dup {
			return nil, p.fail(namePos, "duplicate field"+knownName(name))
		}
		v.typ.fields[name] = fv.typ
		v.fields = append(v.fields, field{name: name, val: fv})
		done, err := p.separator('}', "expected ',' or '}' after a record field, ")
		if err != nil || done {
			return v, err
		}
	}
}

// list parses a list literal; all elements must have one type. The empty
// list is returned untyped for expr to check its annotation.
func (p *parser) list() (*value, error) {
	v := &value{pos: p.pos}
	p.pos++
	if err := p.leadingComma(); err != nil {
		return nil, err
	}
	if p.has("]") {
		p.pos++
		return v, nil
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if v.typ == nil {
			v.typ = &typ{kind: kindList, elem: e.typ}
		} else if !v.typ.elem.equal(e.typ) {
			return nil, p.fail(e.pos, "list elements must all have the same type")
		}
		v.elems = append(v.elems, e)
		done, err := p.separator(']', "expected ',' or ']' after a list element, ")
		if err != nil || done {
			return v, err
		}
	}
}

// typeExpr parses an annotation's type: Text, Bool, Natural, List T, a
// record type, or one of these in parentheses. As in Dhall, the argument of
// List cannot itself be an application: List (List Text), not List List Text.
func (p *parser) typeExpr() (*typ, error) { return p.typeTerm(true) }

// typeTerm is typeExpr; with apply false it parses a function argument,
// where List would need parentheses.
func (p *parser) typeTerm(apply bool) (*typ, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	start := p.pos
	switch {
	case p.has("("):
		return parenthesized(p, p.typeExpr)
	case p.has("{"):
		return p.recordType()
	case p.pos < len(p.src) && (isLabelStart(p.src[p.pos]) || p.has("`")):
		name, err := p.label()
		if err != nil {
			return nil, err
		}
		switch name {
		case "Text":
			return &typ{kind: kindText}, nil
		case "Bool":
			return &typ{kind: kindBool}, nil
		case "Natural":
			return &typ{kind: kindNatural}, nil
		case "List":
			if !apply {
				return nil, p.fail(start, "List as an argument needs parentheses, as in List (List Text)")
			}
			if err := p.space1("List"); err != nil {
				return nil, err
			}
			elem, err := p.typeTerm(false)
			if err != nil {
				return nil, err
			}
			return &typ{kind: kindList, elem: elem}, nil
		}
		return nil, p.fail(start, "unsupported type: only Text, Bool, Natural, List and record types are understood")
	}
	return nil, p.fail(start, "expected a type, "+p.found())
}

// recordType parses "{ name : T, … }" inside an annotation.
func (p *parser) recordType() (*typ, error) {
	p.pos++
	if err := p.leadingComma(); err != nil {
		return nil, err
	}
	t := &typ{kind: kindRecord, fields: map[string]*typ{}}
	if p.has("}") {
		p.pos++
		return t, nil
	}
	for {
		namePos := p.pos
		name, err := p.label()
		if err != nil {
			return nil, err
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if !p.has(":") {
			return nil, p.fail(p.pos, "expected ':' after a field name in a record type, "+p.found())
		}
		p.pos++
		if err := p.space1("':'"); err != nil {
			return nil, err
		}
		ft, err := p.typeExpr()
		if err != nil {
			return nil, err
		}
		if _, dup := t.fields[name]; dup {
			return nil, p.fail(namePos, "duplicate field in a record type")
		}
		t.fields[name] = ft
		done, err := p.separator('}', "expected ',' or '}' in a record type, ")
		if err != nil || done {
			return t, err
		}
	}
}

// leadingComma skips whitespace and the optional comma Dhall allows right
// after an opening bracket or brace.
func (p *parser) leadingComma() error {
	if err := p.space(); err != nil {
		return err
	}
	if p.has(",") {
		p.pos++
		return p.space()
	}
	return nil
}

// separator consumes what follows an element: ',' (possibly trailing
// before close) or close. done reports that close was consumed.
func (p *parser) separator(close byte, expected string) (done bool, err error) {
	if err := p.space(); err != nil {
		return false, err
	}
	if p.has(",") {
		p.pos++
		if err := p.space(); err != nil {
			return false, err
		}
	} else if !p.has(string(close)) {
		return false, p.fail(p.pos, expected+p.found())
	}
	if p.has(string(close)) {
		p.pos++
		return true, nil
	}
	return false, nil
}

// toConfig extracts the cachix fields from the parsed top-level record,
// checking their types as cachix's decoder would.
func (p *parser) toConfig(v *value) (*Config, error) {
	if v.typ.kind != kindRecord {
		return nil, p.fail(v.pos, "expected a record literal { authToken = …, … } at the top level")
	}
	c := &Config{}
	for _, f := range v.fields {
		switch f.name {
		case "authToken", "hostname":
			if f.val.typ.kind != kindText {
				return nil, p.fail(f.val.pos, f.name+" must be a text literal")
			}
			s := f.val.text
			if f.name == "authToken" {
				c.AuthToken = &s
			} else {
				c.Hostname = &s
			}
		case "binaryCaches":
			if !isBinaryCacheList(f.val.typ) {
				return nil, p.fail(f.val.pos, "binaryCaches must be a List { name : Text, secretKey : Text }")
			}
			c.BinaryCaches = make([]BinaryCache, 0, len(f.val.elems))
			for _, e := range f.val.elems {
				name, _ := e.get("name")
				key, _ := e.get("secretKey")
				c.BinaryCaches = append(c.BinaryCaches, BinaryCache{Name: name.text, SecretKey: key.text})
			}
		}
	}
	return c, nil
}

// isBinaryCacheList reports whether t is a list of records with Text fields
// name and secretKey (further fields are tolerated and ignored).
func isBinaryCacheList(t *typ) bool {
	if t.kind != kindList || t.elem.kind != kindRecord {
		return false
	}
	for _, name := range []string{"name", "secretKey"} {
		if ft, ok := t.elem.fields[name]; !ok || ft.kind != kindText {
			return false
		}
	}
	return true
}

// knownName returns " name" for the field names cachix uses, and "" for
// anything else: an unknown label might be a mistyped secret.
func knownName(name string) string {
	switch name {
	case "authToken", "hostname", "binaryCaches", "name", "secretKey":
		return " " + name
	}
	return ""
}

// isDigit reports an ASCII decimal digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isHex reports an ASCII hexadecimal digit of either case.
func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isLabelStart reports a character that may begin a plain label.
func isLabelStart(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
}

// isLabelChar reports a character that may continue a plain label.
func isLabelChar(c byte) bool {
	return isLabelStart(c) || isDigit(c) || c == '-' || c == '/'
}

// parenthesized parses "( inner )" with the whitespace Dhall allows inside,
// for expressions and types alike.
func parenthesized[T any](p *parser, inner func() (T, error)) (T, error) {
	var zero T
	p.pos++
	if err := p.space(); err != nil {
		return zero, err
	}
	v, err := inner()
	if err != nil {
		return zero, err
	}
	if err := p.space(); err != nil {
		return zero, err
	}
	if !p.has(")") {
		return zero, p.fail(p.pos, "expected ')', "+p.found())
	}
	p.pos++
	return v, nil
}

// Package jsonfield walks a JSON document field by field, remembering
// where each value is (cache.name, paths[0].storePath,
// result["my sub"].build), so that a parser can say exactly which field is
// wrong and what it holds instead. The manifest and the om ci results are
// read with it; each keeps its own wording for errors.
package jsonfield

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
)

// Value is one value of a document and its path ("" for the top).
type Value struct {
	// Path names the value in messages.
	Path string
	// raw is the value's JSON; nil when the field is absent.
	raw json.RawMessage
}

// Root is the top of the document data (which need not be valid JSON:
// the accessors then report what they find).
func Root(data []byte) Value { return Value{raw: data} }

// Absent reports a field that is not there at all.
func (v Value) Absent() bool { return v.raw == nil }

// Null reports a field that is absent or null: most fields treat both as
// "not given".
func (v Value) Null() bool {
	t := bytes.TrimSpace(v.raw)
	return len(t) == 0 || string(t) == "null"
}

// Kind names the value's JSON type for a message: "an object", "an
// array", "a string", "a number", "a boolean", "null", or "nothing".
func (v Value) Kind() string {
	t := bytes.TrimSpace(v.raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// maxShown bounds the part of a string or number Describe shows.
const maxShown = 80

// Describe is Kind, with the value itself for strings and numbers ("the
// string \"result\"", "the number 3"), cut to one short line.
func (v Value) Describe() string {
	t := bytes.TrimSpace(v.raw)
	switch v.Kind() {
	case "a string":
		var s string
		if json.Unmarshal(t, &s) == nil {
			return "the string " + shorten(fmt.Sprintf("%q", s))
		}
	case "a number":
		return "the number " + shorten(string(t))
	}
	return v.Kind()
}

// Of describes a Go string as Describe would describe it in a document.
func Of(s string) Value {
	b, _ := json.Marshal(s)
	return Value{raw: b}
}

// shorten keeps a shown value to one readable line.
func shorten(s string) string {
	if len(s) > maxShown {
		return s[:maxShown] + "…"
	}
	return s
}

// Text is the value as a string; false when it is not one.
func (v Value) Text() (string, bool) {
	var s string
	if len(bytes.TrimSpace(v.raw)) == 0 || bytes.TrimSpace(v.raw)[0] != '"' || json.Unmarshal(v.raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Number is the value as a number; false when it is not one.
func (v Value) Number() (float64, bool) {
	var f float64
	if v.Kind() != "a number" || json.Unmarshal(v.raw, &f) != nil {
		return 0, false
	}
	return f, true
}

// Bool is the value as a boolean; false in ok when it is not one.
func (v Value) Bool() (b, ok bool) {
	if v.Kind() != "a boolean" || json.Unmarshal(v.raw, &b) != nil {
		return false, false
	}
	return b, true
}

// Decode unmarshals the value into dst.
func (v Value) Decode(dst any) error { return json.Unmarshal(v.raw, dst) }

// Object is the value as an object; false when it is not one.
func (v Value) Object() (Object, bool) {
	if v.Kind() != "an object" {
		return Object{}, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v.raw, &m); err != nil {
		return Object{}, false
	}
	return Object{Path: v.Path, fields: m}, true
}

// Array is the value's elements, each with its path (paths[3]); false when
// it is not an array.
func (v Value) Array() ([]Value, bool) {
	if v.Kind() != "an array" {
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v.raw, &items); err != nil {
		return nil, false
	}
	out := make([]Value, len(items))
	for i, it := range items {
		out[i] = Value{Path: fmt.Sprintf("%s[%d]", v.Path, i), raw: it}
	}
	return out, true
}

// Object is a JSON object whose fields remember their paths.
type Object struct {
	// Path names the object in messages.
	Path   string
	fields map[string]json.RawMessage
}

// Get is the field key (absent when there is none).
func (o Object) Get(key string) Value {
	return Value{Path: Join(o.Path, key), raw: o.fields[key]}
}

// Len is the number of fields.
func (o Object) Len() int { return len(o.fields) }

// Keys are the field names, sorted, so that the first error found does not
// depend on map order.
func (o Object) Keys() []string {
	keys := make([]string, 0, len(o.fields))
	for k := range o.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// identifier matches keys that read well after a dot in a path.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Join appends key to a path: a.b, or a["odd key"].
func Join(base, key string) string {
	if identifier.MatchString(key) {
		if base == "" {
			return key
		}
		return base + "." + key
	}
	return fmt.Sprintf("%s[%q]", base, key)
}

package cachixserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// maxJSONBody bounds JSON request bodies (a bulk query of 32768 hashes is
// about 1.1 MiB; a completion with 10000 parts about 0.6 MiB).
const maxJSONBody = 4 << 20

// errBadContentType marks a JSON body sent with the wrong content type.
var errBadContentType = errors.New("unsupported content type")

// readJSONBody checks the content type (Servant answers 415 to anything
// but application/json) and reads the whole body, bounded.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: want application/json, got %q", errBadContentType, r.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	return b, nil
}

// rejectBody answers a body-reading error with 415 or 400.
// jsonBody reads a strict JSON request body, answering the rejection itself
// when it cannot; handlers just return on false.
func (s *Server) jsonBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := readJSONBody(w, r)
	if err != nil {
		s.rejectBody(w, r, err)
		return nil, false
	}
	return body, true
}

func (s *Server) rejectBody(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBadContentType) {
		s.reject(w, r, http.StatusUnsupportedMediaType, "%v", err)
		return
	}
	s.reject(w, r, http.StatusBadRequest, "%v", err)
}

// decodeValue parses exactly one JSON value from b, with nothing after it.
func decodeValue(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: trailing data after the value")
	}
	return nil
}

// object is a JSON object whose fields are checked one by one.
type object map[string]json.RawMessage

// decodeObject parses raw as a JSON object with exactly the given keys:
// an unknown or a missing key is an error (aeson's generic decoding
// requires every non-Maybe field, and every Maybe field is sent as null).
func decodeObject(raw []byte, what string, keys ...string) (object, error) {
	if isNull(raw) {
		return nil, fmt.Errorf("%s: expected an object, got null", what)
	}
	var o object
	if err := decodeValue(raw, &o); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var unknown, missing []string
	for k := range o {
		if !want[k] {
			unknown = append(unknown, k)
		}
	}
	for _, k := range keys {
		if _, ok := o[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s: unknown field(s) %s", what, quoteAll(unknown))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: missing field(s) %s", what, quoteAll(missing))
	}
	return o, nil
}

// quoteAll renders field names for messages.
func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// isNull reports whether a raw JSON value is the literal null.
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// str reads a required JSON string field (null is not a string).
func (o object) str(key string) (string, error) {
	raw := bytes.TrimSpace(o[key])
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("field %q: expected a string, got %s", key, abbreviate(raw))
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("field %q: %w", key, err)
	}
	return v, nil
}

// optStr reads a JSON field that is a string or null.
func (o object) optStr(key string) (*string, error) {
	if isNull(o[key]) {
		return nil, nil
	}
	v, err := o.str(key)
	if err != nil {
		return nil, fmt.Errorf("%w (or null)", err)
	}
	return &v, nil
}

// integer reads a required JSON integer field (no fraction, no exponent).
func (o object) integer(key string) (int64, error) {
	return parseInteger(key, o[key])
}

// parseInteger checks raw is a plain JSON integer that fits int64.
func parseInteger(key string, raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %q: expected an integer, got %s", key, abbreviate(raw))
	}
	return n, nil
}

// strList reads a required JSON array of strings (no nulls inside).
func (o object) strList(key string) ([]string, error) {
	raw := o[key]
	if isNull(raw) {
		return nil, fmt.Errorf("field %q: expected an array, got null", key)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("field %q: expected an array of strings, got %s", key, abbreviate(raw))
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		v, err := object{"": it}.str("")
		if err != nil {
			return nil, fmt.Errorf("field %q: element %d: expected a string, got %s", key, i, abbreviate(it))
		}
		out = append(out, v)
	}
	return out, nil
}

// abbreviate shortens a raw JSON value for an error message.
func abbreviate(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}

// Package manifest reads version 1 of the cachix-select manifest: the JSON
// file the Nix modules render into the store, naming the cache and the store
// paths to push (design.md §3). Unknown fields are ignored so that newer
// modules keep working with older binaries; a wrong type or a missing
// required field is an error naming the file and the field.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ErrInvalid marks a manifest that cannot be used. Errors wrapping it are
// *Error values naming the file and the field.
var ErrInvalid = errors.New("invalid manifest")

// DefaultHost is the Cachix API host when neither the manifest, the
// command line nor cachix.dhall names one.
const DefaultHost = "https://cachix.org"

// Manifest is a parsed, validated manifest.
type Manifest struct {
	// File is where the manifest was read from ("" for in-memory manifests).
	File    string `json:"-"`
	Version int    `json:"version"`
	Cache   Cache  `json:"cache"`
	Paths   []Path `json:"paths"`
	Push    Push   `json:"push"`
	Origin  string `json:"origin,omitempty"`
}

// Cache says where to push: a Cachix cache (Name, Host) or a plain binary cache (URL).
type Cache struct {
	Name           string `json:"name,omitempty"`
	Host           string `json:"host,omitempty"`
	URL            string `json:"url,omitempty"`
	AuthTokenFile  string `json:"authTokenFile,omitempty"`
	SigningKeyFile string `json:"signingKeyFile,omitempty"`
}

// Path is one selected store path; its runtime closure is pushed with it.
type Path struct {
	Name      string `json:"name"`
	StorePath string `json:"storePath"`
	Pin       *Pin   `json:"pin,omitempty"`
}

// Pin asks for the path (not its closure) to be pinned under Name.
type Pin struct {
	Name string `json:"name"`
	Keep *Keep  `json:"keep,omitempty"`
}

// Keep is a pin retention policy: exactly one of Revisions, Days, Forever.
type Keep struct {
	Revisions int  `json:"revisions,omitempty"`
	Days      int  `json:"days,omitempty"`
	Forever   bool `json:"-"`
}

// MarshalJSON writes "forever" or the single-key object.
func (k Keep) MarshalJSON() ([]byte, error) {
	switch {
	case k.Forever:
		return []byte(`"forever"`), nil
	case k.Revisions > 0:
		return json.Marshal(map[string]int{"revisions": k.Revisions})
	default:
		return json.Marshal(map[string]int{"days": k.Days})
	}
}

// Push holds the tuning knobs; zero values mean "use the default".
type Push struct {
	Jobs             int    `json:"jobs,omitempty"`
	Compression      string `json:"compression,omitempty"`
	CompressionLevel *int   `json:"compressionLevel,omitempty"`
	OmitDeriver      bool   `json:"omitDeriver,omitempty"`
}

// Error is one problem with a manifest.
type Error struct {
	File  string
	Field string
	Msg   string
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "manifest"
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", file, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", file, e.Field, e.Msg)
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *Error) Unwrap() error { return ErrInvalid }

// Load reads and validates the manifest at file.
func Load(file string) (*Manifest, error) {
	return ParseFile(file, "")
}

// ParseFile reads and validates the manifest at file for the store at
// storeDir ("" for /nix/store).
func ParseFile(file, storeDir string) (*Manifest, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseWith(data, file, Options{StoreDir: storeDir})
}

// MaxSize bounds a manifest file: far more than 100,000 paths with pins,
// far less than what would exhaust memory.
const MaxSize = 64 << 20

// ReadFile reads a manifest file, refusing what is not a regular file (a
// FIFO or a device would block or never end) and files over MaxSize.
// Errors are *Error values naming the file.
func ReadFile(file string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
	// refused below. It changes nothing for regular files.
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", unwrapPathError(err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", unwrapPathError(err))}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is %s, not a regular file; give a manifest file", fileKind(fi.Mode()))}
	}
	if fi.Size() > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is %d bytes; a manifest may be at most %d MiB", fi.Size(), MaxSize>>20)}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", unwrapPathError(err))}
	}
	if len(data) > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is more than %d MiB; a manifest may be at most that", MaxSize>>20)}
	}
	return data, nil
}

// fileKind names a non-regular file type for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// unwrapPathError drops the file name os errors repeat.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Options for validation that depend on the machine.
type Options struct {
	// StoreDir is the Nix store directory (default /nix/store).
	StoreDir string
}

// Parse decodes and validates a manifest; file names it in errors.
func Parse(data []byte, file string) (*Manifest, error) {
	return ParseWith(data, file, Options{})
}

// ParseWith is Parse with explicit options.
func ParseWith(data []byte, file string, opts Options) (*Manifest, error) {
	if opts.StoreDir == "" {
		opts.StoreDir = "/nix/store"
	}
	p := &parser{file: file, opts: opts}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, p.errf("", "not valid JSON: %s", jsonErr(err, data))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, p.errf("", "must be a JSON object, not %s", jsonType(raw))
	}
	m := &Manifest{File: file}
	if err := p.version(top, m); err != nil {
		return nil, err
	}
	if err := p.cache(top, m); err != nil {
		return nil, err
	}
	if err := p.paths(top, m); err != nil {
		return nil, err
	}
	if err := p.push(top, m); err != nil {
		return nil, err
	}
	if raw, ok := top["origin"]; ok && !isNull(raw) {
		if err := p.str(raw, "origin", &m.Origin); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// parser carries the file name into every error.
type parser struct {
	file string
	opts Options
}

func (p *parser) errf(field, format string, args ...any) error {
	return &Error{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// jsonErr turns a syntax error offset into a line:column position.
func jsonErr(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset)
		if off > len(data) {
			off = len(data)
		}
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		col := off - bytes.LastIndexByte(data[:off], '\n')
		return fmt.Sprintf("%v at line %d, column %d", se, line, col)
	}
	return err.Error()
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonType names the JSON type of raw for error messages.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
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

func (p *parser) str(raw json.RawMessage, field string, dst *string) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return p.errf(field, "must be a string, not %s", jsonType(raw))
	}
	return nil
}

func (p *parser) integer(raw json.RawMessage, field string, dst *int) error {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return p.errf(field, "must be a number, not %s", jsonType(raw))
	}
	if f != float64(int(f)) {
		return p.errf(field, "must be a whole number, not %v", f)
	}
	*dst = int(f)
	return nil
}

func (p *parser) object(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, p.errf(field, "must be an object, not %s", jsonType(raw))
	}
	return obj, nil
}

func (p *parser) version(top map[string]json.RawMessage, m *Manifest) error {
	raw, ok := top["version"]
	if !ok {
		return p.errf("version", "is required (this program reads version 1)")
	}
	if err := p.integer(raw, "version", &m.Version); err != nil {
		return err
	}
	if m.Version != 1 {
		return p.errf("version", "is %d, but this program reads only version 1 (upgrade cachix-select?)", m.Version)
	}
	return nil
}

func (p *parser) cache(top map[string]json.RawMessage, m *Manifest) error {
	raw, ok := top["cache"]
	if !ok || isNull(raw) {
		return p.errf("cache", "is required")
	}
	obj, err := p.object(raw, "cache")
	if err != nil {
		return err
	}
	fields := []struct {
		name string
		dst  *string
	}{
		{"name", &m.Cache.Name}, {"host", &m.Cache.Host}, {"url", &m.Cache.URL},
		{"authTokenFile", &m.Cache.AuthTokenFile}, {"signingKeyFile", &m.Cache.SigningKeyFile},
	}
	for _, f := range fields {
		if v, ok := obj[f.name]; ok && !isNull(v) {
			if err := p.str(v, "cache."+f.name, f.dst); err != nil {
				return err
			}
		}
	}
	c := &m.Cache
	switch {
	case c.Name != "" && c.URL != "":
		return p.errf("cache", "has both name and url; give exactly one (name for Cachix, url for a plain binary cache)")
	case c.Name == "" && c.URL == "":
		return p.errf("cache", "needs either name (a Cachix cache) or url (a plain binary cache such as file:///srv/cache)")
	case c.URL != "" && c.Host != "":
		return p.errf("cache.host", "applies only to Cachix caches (name), not to url")
	}
	if c.Name != "" {
		if err := ValidateCacheName(c.Name); err != nil {
			return p.errf("cache.name", "%v", err)
		}
		if c.Host != "" && !strings.HasPrefix(c.Host, "https://") && !strings.HasPrefix(c.Host, "http://") {
			return p.errf("cache.host", "%s must be an http(s) URL such as %s", store.Quote(c.Host), DefaultHost)
		}
	}
	if c.URL != "" {
		if err := ValidateCacheURL(c.URL); err != nil {
			return p.errf("cache.url", "%v", err)
		}
	}
	for _, f := range []struct{ field, val string }{
		{"cache.authTokenFile", c.AuthTokenFile}, {"cache.signingKeyFile", c.SigningKeyFile},
	} {
		if f.val == "" {
			continue
		}
		if !filepath.IsAbs(f.val) {
			return p.errf(f.field, "must be an absolute path, not %s", store.Quote(f.val))
		}
		if InStore(f.val, p.opts.StoreDir) {
			return p.errf(f.field, "%s is inside the Nix store, which every user can read; "+
				"keep secrets outside the store (for example /run/secrets/…) and give the path as a string, not a Nix path", f.val)
		}
	}
	return nil
}

// InStore reports whether file lies inside storeDir, also through
// symlinks (on NixOS /etc/static/… points into the store).
func InStore(file, storeDir string) bool {
	inside := func(p string) bool {
		p = filepath.Clean(p)
		return p == storeDir || strings.HasPrefix(p, storeDir+"/")
	}
	if inside(file) {
		return true
	}
	real, err := filepath.EvalSymlinks(file)
	return err == nil && inside(real)
}

// ValidateCacheName checks a Cachix cache name (lower-case letters, digits, '-').
func ValidateCacheName(name string) error {
	if name == "" {
		return errors.New("is empty")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%s is not a valid Cachix cache name", store.Quote(name))
		}
	}
	return nil
}

// ValidateCacheURL accepts the binary cache URLs cachix-select can write to.
func ValidateCacheURL(u string) error {
	switch {
	case strings.HasPrefix(u, "file://"):
		if !strings.HasPrefix(u, "file:///") {
			return fmt.Errorf("%s: a file URL needs an absolute path (file:///srv/cache)", store.Quote(u))
		}
		return nil
	case strings.HasPrefix(u, "s3://"):
		return fmt.Errorf("%s: s3:// caches are not supported yet", store.Quote(u))
	}
	return fmt.Errorf("%s is not a supported binary cache URL (use file:///path, or cache.name for Cachix)", store.Quote(u))
}

func (p *parser) paths(top map[string]json.RawMessage, m *Manifest) error {
	raw, ok := top["paths"]
	if !ok || isNull(raw) {
		return p.errf("paths", "is required (it may be an empty list)")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return p.errf("paths", "must be an array, not %s", jsonType(raw))
	}
	pins := map[string]int{}
	for i, item := range items {
		field := fmt.Sprintf("paths[%d]", i)
		obj, err := p.object(item, field)
		if err != nil {
			return err
		}
		var e Path
		sp, ok := obj["storePath"]
		if !ok || isNull(sp) {
			return p.errf(field+".storePath", "is required")
		}
		if err := p.str(sp, field+".storePath", &e.StorePath); err != nil {
			return err
		}
		if err := p.storePath(e.StorePath, field+".storePath"); err != nil {
			return err
		}
		if v, ok := obj["name"]; ok && !isNull(v) {
			if err := p.str(v, field+".name", &e.Name); err != nil {
				return err
			}
		}
		if e.Name == "" {
			e.Name = NameOf(e.StorePath)
		}
		if v, ok := obj["pin"]; ok && !isNull(v) {
			pin, err := p.pin(v, field+".pin")
			if err != nil {
				return err
			}
			if j, dup := pins[pin.Name]; dup {
				return p.errf(field+".pin.name", "%s is also used by paths[%d]", store.Quote(pin.Name), j)
			}
			pins[pin.Name] = i
			e.Pin = pin
		}
		m.Paths = append(m.Paths, e)
	}
	return nil
}

// storePath checks that sp is a store path Nix would accept (hash and
// name; not whether it is valid in the local store), so that a manifest
// that can never be pushed fails its check instead of waiting in a queue.
func (p *parser) storePath(sp, field string) error {
	dir := p.opts.StoreDir + "/"
	if !strings.HasPrefix(sp, dir) {
		return p.errf(field, "%s is not a path in %s", store.Quote(sp), p.opts.StoreDir)
	}
	base := strings.TrimPrefix(sp, dir)
	if i := strings.IndexByte(base, '/'); i >= 0 {
		return p.errf(field, "%s points inside a store path; give the store path itself (%s)", store.Quote(sp), store.Quote(dir+base[:i]))
	}
	if err := store.CheckPath(p.opts.StoreDir, sp); err != nil {
		var bad *store.BadPathError
		if errors.As(err, &bad) {
			return p.errf(field, "%s is not a valid store path: %s", store.Quote(sp), bad.Reason)
		}
		return p.errf(field, "%v", err)
	}
	return nil
}

// NameOf is the name part of a store path (/nix/store/<hash>-hello-2.12 → hello-2.12).
func NameOf(storePath string) string {
	base := path.Base(storePath)
	if len(base) > 33 {
		return base[33:]
	}
	return base
}

func (p *parser) pin(raw json.RawMessage, field string) (*Pin, error) {
	obj, err := p.object(raw, field)
	if err != nil {
		return nil, err
	}
	pin := &Pin{}
	v, ok := obj["name"]
	if !ok || isNull(v) {
		return nil, p.errf(field+".name", "is required")
	}
	if err := p.str(v, field+".name", &pin.Name); err != nil {
		return nil, err
	}
	if pin.Name == "" {
		return nil, p.errf(field+".name", "must not be empty")
	}
	if err := checkPinName(pin.Name); err != nil {
		return nil, p.errf(field+".name", "%s %v", store.Quote(pin.Name), err)
	}
	if k, ok := obj["keep"]; ok && !isNull(k) {
		keep, err := p.keep(k, field+".keep")
		if err != nil {
			return nil, err
		}
		pin.Keep = keep
	}
	return pin, nil
}

// maxPinName bounds a pin name: pins are named after packages and
// systems, and a name is sent to Cachix and shown in messages.
const maxPinName = 256

// checkPinName refuses pin names that cannot be meant: control
// characters, invalid UTF-8, or absurd lengths. Such a pin could never be
// created, so its manifest would stay queued for ever.
func checkPinName(name string) error {
	if len(name) > maxPinName {
		return fmt.Errorf("is %d bytes long; a pin name may be at most %d", len(name), maxPinName)
	}
	if !utf8.ValidString(name) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("contains the control character %q", r)
		}
	}
	return nil
}

func (p *parser) keep(raw json.RawMessage, field string) (*Keep, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "forever" {
			return &Keep{Forever: true}, nil
		}
		return nil, p.errf(field, "%s is not a keep policy (want \"forever\", {\"revisions\": N} or {\"days\": N})", store.Quote(s))
	}
	obj, err := p.object(raw, field)
	if err != nil {
		return nil, p.errf(field, "must be \"forever\", {\"revisions\": N} or {\"days\": N}, not %s", jsonType(raw))
	}
	if len(obj) != 1 {
		return nil, p.errf(field, "must have exactly one of revisions or days")
	}
	k := &Keep{}
	for key, v := range obj {
		var n int
		if err := p.integer(v, field+"."+key, &n); err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, p.errf(field+"."+key, "must be at least 1, not %d", n)
		}
		switch key {
		case "revisions":
			k.Revisions = n
		case "days":
			k.Days = n
		default:
			return nil, p.errf(field, "unknown key %q (want revisions or days)", key)
		}
	}
	return k, nil
}

func (p *parser) push(top map[string]json.RawMessage, m *Manifest) error {
	raw, ok := top["push"]
	if !ok || isNull(raw) {
		return nil
	}
	obj, err := p.object(raw, "push")
	if err != nil {
		return err
	}
	if v, ok := obj["jobs"]; ok && !isNull(v) {
		if err := p.integer(v, "push.jobs", &m.Push.Jobs); err != nil {
			return err
		}
		if m.Push.Jobs < 1 || m.Push.Jobs > 256 {
			return p.errf("push.jobs", "must be between 1 and 256, not %d", m.Push.Jobs)
		}
	}
	if v, ok := obj["compression"]; ok && !isNull(v) {
		if err := p.str(v, "push.compression", &m.Push.Compression); err != nil {
			return err
		}
		if m.Push.Compression != "zstd" && m.Push.Compression != "xz" {
			return p.errf("push.compression", "must be \"zstd\" or \"xz\", not %s", store.Quote(m.Push.Compression))
		}
	}
	if v, ok := obj["compressionLevel"]; ok && !isNull(v) {
		var n int
		if err := p.integer(v, "push.compressionLevel", &n); err != nil {
			return err
		}
		if n < 0 || n > 16 {
			return p.errf("push.compressionLevel", "must be between 0 and 16, not %d", n)
		}
		m.Push.CompressionLevel = &n
	}
	if v, ok := obj["omitDeriver"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &m.Push.OmitDeriver); err != nil {
			return p.errf("push.omitDeriver", "must be true or false, not %s", jsonType(v))
		}
	}
	return nil
}

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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/xrash/smetrics"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/internal/jsonfield"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/pins"
	"github.com/cachix-select/cachix-select/pushlib/selection"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// ErrInvalid marks a manifest that cannot be used. Errors wrapping it are
// *Error values naming the file and the field.
var ErrInvalid = fault.BadInput("invalid manifest")

// Manifest is a parsed, validated manifest.
type Manifest struct {
	// File is where the manifest was read from ("" for in-memory manifests).
	File    string `json:"-"`
	Version int    `json:"version"`
	Cache   Cache  `json:"cache"`
	Paths   []Path `json:"paths"`
	Push    Push   `json:"push"`
	Origin  string `json:"origin,omitempty"`
	// Unknown are the fields this version does not know (as paths such
	// as push.compresion), ignored for forward compatibility; the CLI
	// warns about them, since a misspelt one does nothing.
	Unknown []string `json:"-"`
}

// Cache says where to push: a Cachix cache (Name, Host) or a plain binary cache (URL).
type Cache struct {
	Name           string `json:"name,omitempty"`
	Host           string `json:"host,omitempty"`
	URL            string `json:"url,omitempty"`
	AuthTokenFile  string `json:"authTokenFile,omitempty"`
	SigningKeyFile string `json:"signingKeyFile,omitempty"`
}

// Path is one selected store path; its runtime closure (or, with Closure
// "build", its build closure) is pushed with it.
type Path struct {
	Name      string `json:"name"`
	StorePath string `json:"storePath"`
	Pin       *Pin   `json:"pin,omitempty"`
	// Closure is "runtime" (also when absent) or "build".
	Closure selection.Closure `json:"closure,omitempty"`
}

// Pin asks for the path (not its closure) to be pinned under Name.
type Pin struct {
	Name string        `json:"name"`
	Keep *backend.Keep `json:"keep,omitempty"`
}

// Push holds the tuning knobs; zero values mean "use the default".
type Push struct {
	Jobs             int    `json:"jobs,omitempty"`
	Compression      string `json:"compression,omitempty"`
	CompressionLevel *int   `json:"compressionLevel,omitempty"`
	OmitDeriver      bool   `json:"omitDeriver,omitempty"`
	// ChunkSize and NumConcurrentChunks size a Cachix upload's parts, as
	// cachix push's --chunk-size and --num-concurrent-chunks.
	ChunkSize           int `json:"chunkSize,omitempty"`
	NumConcurrentChunks int `json:"numConcurrentChunks,omitempty"`
	// Exclude and Upstream are what push.exclude and push.upstream say
	// (design.md §5.9).
	Exclude  *Exclude  `json:"exclude,omitempty"`
	Upstream *Upstream `json:"upstream,omitempty"`
}

// Exclude is push.exclude: the paths of the closures to leave out, and
// what becomes of the paths that depend on them.
type Exclude struct {
	Names      []string       `json:"names,omitempty"`
	Regex      []string       `json:"regex,omitempty"`
	MaxNarSize uint64         `json:"maxNarSize,omitempty"`
	Mode       selection.Mode `json:"mode,omitempty"`
}

// Upstream is push.upstream: the upstream filter.
type Upstream struct {
	Filter *bool    `json:"filter,omitempty"`
	Keys   []string `json:"keys,omitempty"`
}

// Selection is the manifest's layer of the selection rules.
func (m *Manifest) Selection() selection.Rules {
	var r selection.Rules
	if e := m.Push.Exclude; e != nil {
		r.Names, r.Regex, r.MaxNarSize, r.Mode = e.Names, e.Regex, e.MaxNarSize, e.Mode
	}
	if u := m.Push.Upstream; u != nil {
		r.UpstreamFilter, r.UpstreamKeys = u.Filter, u.Keys
	}
	return r
}

// Layer is what the manifest says about its target, for target.Resolve:
// below the command line, above the environment and cachix.dhall.
func (m *Manifest) Layer() target.Layer {
	return target.Layer{
		Origin: target.Manifest,
		Cache:  m.Cache.Name, URL: m.Cache.URL, Host: m.Cache.Host,
		AuthTokenFile: m.Cache.AuthTokenFile, SigningKeyFile: m.Cache.SigningKeyFile,
		Compression: m.Push.Compression, CompressionLevel: m.Push.CompressionLevel,
		Jobs: m.Push.Jobs, OmitDeriver: m.Push.OmitDeriver,
		ChunkSize: m.Push.ChunkSize, ConcurrentChunks: m.Push.NumConcurrentChunks,
	}
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
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", fsutil.Cause(err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", fsutil.Cause(err))}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is %s, not a regular file; give a manifest file", fsutil.Kind(fi.Mode()))}
	}
	if fi.Size() > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is %d bytes; a manifest may be at most %d MiB", fi.Size(), MaxSize>>20)}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot read: %v", fsutil.Cause(err))}
	}
	if len(data) > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("is more than %d MiB; a manifest may be at most that", MaxSize>>20)}
	}
	return data, nil
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
	root := jsonfield.Root(raw)
	top, ok := root.Object()
	if !ok {
		return nil, p.errf("", "must be a JSON object, not %s", root.Kind())
	}
	m := &Manifest{File: file}
	p.known(top, "version", "cache", "paths", "push", "origin")
	for _, step := range []func(jsonfield.Object, *Manifest) error{p.version, p.cache, p.paths, p.push} {
		if err := step(top, m); err != nil {
			return nil, err
		}
	}
	if v := top.Get("origin"); !v.Null() {
		if err := p.str(v, &m.Origin); err != nil {
			return nil, err
		}
	}
	m.Unknown = p.unknown
	return m, nil
}

// parser carries the file name into every error, and gathers the
// unknown fields.
type parser struct {
	file    string
	opts    Options
	unknown []string
}

// known records the fields of obj other than keys as unknown.
func (p *parser) known(obj jsonfield.Object, keys ...string) {
	for _, k := range obj.Keys() {
		if !slices.Contains(keys, k) {
			p.unknown = append(p.unknown, obj.Get(k).Path)
		}
	}
}

// missing is the error of the required field key of obj, absent: "is
// required" and note, naming an unknown field of obj that looks like key
// misspelt ("storPath" for "storePath"), since that is the likely cause.
func (p *parser) missing(obj jsonfield.Object, field, key, note string) error {
	msg := "is required" + note
	for _, k := range obj.Keys() {
		if path := obj.Get(k).Path; slices.Contains(p.unknown, path) &&
			(strings.EqualFold(k, key) || smetrics.JaroWinkler(strings.ToLower(k), strings.ToLower(key), 0.7, 4) >= 0.85) {
			msg += fmt.Sprintf("; %s is not a field of manifest version 1: is it %s misspelt?", path, key)
			break
		}
	}
	return p.errf(field, "%s", msg)
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

// str reads a string field.
func (p *parser) str(v jsonfield.Value, dst *string) error {
	s, ok := v.Text()
	if !ok {
		return p.errf(v.Path, "must be a string, not %s", v.Kind())
	}
	*dst = s
	return nil
}

// integer reads a whole-number field.
func (p *parser) integer(v jsonfield.Value, dst *int) error {
	f, ok := v.Number()
	if !ok {
		return p.errf(v.Path, "must be a number, not %s", v.Kind())
	}
	if f != float64(int(f)) {
		return p.errf(v.Path, "must be a whole number, not %v", f)
	}
	*dst = int(f)
	return nil
}

// object reads an object field.
func (p *parser) object(v jsonfield.Value) (jsonfield.Object, error) {
	obj, ok := v.Object()
	if !ok {
		return obj, p.errf(v.Path, "must be an object, not %s", v.Kind())
	}
	return obj, nil
}

func (p *parser) version(top jsonfield.Object, m *Manifest) error {
	v := top.Get("version")
	if v.Absent() {
		return p.missing(top, "version", "version", " (this program reads version 1)")
	}
	if err := p.integer(v, &m.Version); err != nil {
		return err
	}
	if m.Version != 1 {
		return p.errf("version", "is %d, but this program reads only version 1 (upgrade cachix-select?)", m.Version)
	}
	return nil
}

func (p *parser) cache(top jsonfield.Object, m *Manifest) error {
	v := top.Get("cache")
	if v.Null() {
		return p.missing(top, "cache", "cache", "")
	}
	obj, err := p.object(v)
	if err != nil {
		return err
	}
	p.known(obj, "name", "host", "url", "authTokenFile", "signingKeyFile")
	c := &m.Cache
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"name", &c.Name}, {"host", &c.Host}, {"url", &c.URL},
		{"authTokenFile", &c.AuthTokenFile}, {"signingKeyFile", &c.SigningKeyFile},
	} {
		if v := obj.Get(f.name); !v.Null() {
			if err := p.str(v, f.dst); err != nil {
				return err
			}
		}
	}
	switch {
	case c.Name != "" && c.URL != "":
		return p.errf("cache", "has both name and url; give exactly one (name for Cachix, url for a plain binary cache)")
	case c.Name == "" && c.URL == "":
		return p.errf("cache", "needs either name (a Cachix cache) or url (a plain binary cache such as file:///srv/cache)")
	case c.URL != "" && c.Host != "":
		return p.errf("cache.host", "applies only to Cachix caches (name), not to url")
	}
	// The rules push applies (target.Resolve).
	if c.Name != "" {
		if err := target.CheckCacheName(c.Name); err != nil {
			return p.errf("cache.name", "%v", err)
		}
		if c.Host != "" {
			if err := target.CheckHost(c.Host); err != nil {
				return p.errf("cache.host", "%v", err)
			}
		}
	}
	if c.URL != "" {
		if _, err := target.ParseURL(c.URL); err != nil {
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
		if _, in := store.Within(f.val, p.opts.StoreDir); in {
			return p.errf(f.field, "%s is inside the Nix store, which every user can read; "+
				"keep secrets outside the store (for example /run/secrets/…) and give the path as a string, not a Nix path", f.val)
		}
	}
	return nil
}

func (p *parser) paths(top jsonfield.Object, m *Manifest) error {
	v := top.Get("paths")
	if v.Null() {
		return p.errf("paths", "is required (it may be an empty list)")
	}
	items, ok := v.Array()
	if !ok {
		return p.errf("paths", "must be an array, not %s", v.Kind())
	}
	pins := map[string]int{}
	pinOf := map[string]int{} // store path → the entry that pins it
	for i, item := range items {
		obj, err := p.object(item)
		if err != nil {
			return err
		}
		p.known(obj, "storePath", "name", "closure", "pin")
		var e Path
		sp := obj.Get("storePath")
		if sp.Null() {
			return p.missing(obj, sp.Path, "storePath", "")
		}
		if err := p.str(sp, &e.StorePath); err != nil {
			return err
		}
		if err := p.storePath(e.StorePath, sp.Path); err != nil {
			return err
		}
		if name := obj.Get("name"); !name.Null() {
			if err := p.str(name, &e.Name); err != nil {
				return err
			}
		}
		if e.Name == "" {
			e.Name = store.NameOf(e.StorePath)
		}
		if v := obj.Get("closure"); !v.Null() {
			var c string
			if err := p.str(v, &c); err != nil {
				return err
			}
			closure, err := selection.ParseClosure(c)
			if err != nil {
				return p.errf(v.Path, "%q is not a closure (want \"runtime\" or \"build\")", c)
			}
			e.Closure = closure
		}
		if v := obj.Get("pin"); !v.Null() {
			pin, err := p.pin(v)
			if err != nil {
				return err
			}
			if j, dup := pins[pin.Name]; dup {
				return p.errf(v.Path+".name", "%s is also used by paths[%d]", store.Quote(pin.Name), j)
			}
			// One store path, one pin: push refuses two (pushlib.BuildJobs).
			if j, dup := pinOf[e.StorePath]; dup {
				return p.errf(v.Path+".name", "%s is given two pins, %q (paths[%d]) and %q; give a store path one pin",
					store.Quote(e.StorePath), m.Paths[j].Pin.Name, j, pin.Name)
			}
			pins[pin.Name] = i
			pinOf[e.StorePath] = i
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
	_, err := store.ParsePath(p.opts.StoreDir, sp)
	var bad *store.BadPathError
	switch {
	case err == nil:
		return nil
	case !strings.HasPrefix(sp, p.opts.StoreDir+"/"):
		return p.errf(field, "%s is not a path in %s", store.Quote(sp), p.opts.StoreDir)
	case errors.As(err, &bad):
		return p.errf(field, "%s is not a valid store path: %s", store.Quote(sp), bad.Reason)
	}
	return p.errf(field, "%v", err)
}

func (p *parser) pin(v jsonfield.Value) (*Pin, error) {
	obj, err := p.object(v)
	if err != nil {
		return nil, err
	}
	p.known(obj, "name", "keep")
	pin := &Pin{}
	name := obj.Get("name")
	if name.Null() {
		return nil, p.missing(obj, name.Path, "name", "")
	}
	if err := p.str(name, &pin.Name); err != nil {
		return nil, err
	}
	if pin.Name == "" {
		return nil, p.errf(name.Path, "must not be empty")
	}
	if err := pins.CheckName(pin.Name); err != nil {
		return nil, p.errf(name.Path, "%s %v", store.Quote(pin.Name), err)
	}
	if k := obj.Get("keep"); !k.Null() {
		if pin.Keep, err = p.keep(k); err != nil {
			return nil, err
		}
	}
	return pin, nil
}

func (p *parser) keep(v jsonfield.Value) (*backend.Keep, error) {
	if str, ok := v.Text(); ok {
		if str == string(backend.KeepForever) {
			return &backend.Keep{Kind: backend.KeepForever}, nil
		}
		return nil, p.errf(v.Path, "%s is not a keep policy (want \"forever\", {\"revisions\": N} or {\"days\": N})", store.Quote(str))
	}
	obj, ok := v.Object()
	if !ok {
		return nil, p.errf(v.Path, "must be \"forever\", {\"revisions\": N} or {\"days\": N}, not %s", v.Kind())
	}
	if obj.Len() != 1 {
		return nil, p.errf(v.Path, "must have exactly one of revisions or days")
	}
	key := obj.Keys()[0]
	k := &backend.Keep{Kind: backend.KeepKind(key)}
	if k.Kind != backend.KeepRevisions && k.Kind != backend.KeepDays {
		return nil, p.errf(v.Path, "unknown key %q (want revisions or days)", key)
	}
	n := obj.Get(key)
	if err := p.integer(n, &k.Value); err != nil {
		return nil, err
	}
	if k.Value < 1 {
		return nil, p.errf(n.Path, "must be at least 1, not %d", k.Value)
	}
	return k, nil
}

func (p *parser) push(top jsonfield.Object, m *Manifest) error {
	v := top.Get("push")
	if v.Null() {
		return nil
	}
	obj, err := p.object(v)
	if err != nil {
		return err
	}
	p.known(obj, "jobs", "compression", "compressionLevel", "chunkSize", "numConcurrentChunks", "omitDeriver", "exclude", "upstream")
	if v := obj.Get("jobs"); !v.Null() {
		if err := p.integer(v, &m.Push.Jobs); err != nil {
			return err
		}
		if err := target.CheckJobs(m.Push.Jobs); err != nil {
			return p.errf(v.Path, "%v", err)
		}
	}
	method := obj.Get("compression")
	if !method.Null() {
		if err := p.str(method, &m.Push.Compression); err != nil {
			return err
		}
		if _, err := narstream.ParseMethod(m.Push.Compression); err != nil {
			return p.errf(method.Path, "%v", err)
		}
	}
	if v := obj.Get("compressionLevel"); !v.Null() {
		var n int
		if err := p.integer(v, &n); err != nil {
			return err
		}
		m.Push.CompressionLevel = &n
		// The rule push applies: the level must suit the method.
		if _, err := narstream.Choose(m.Push.Compression, &n); err != nil {
			return p.errf(v.Path, "%v", err)
		}
		// Without a method a Cachix cache may prefer xz (its setting, known
		// only when pushing): the level must suit both, so that what passes
		// here cannot fail the push.
		if m.Push.Compression == "" && m.Cache.Name != "" {
			if err := (narstream.Compression{Method: narstream.XZ, Level: n}).Validate(); err != nil {
				return p.errf(v.Path, "%d is a level for zstd only (xz takes 0–9): set push.compression to \"zstd\", "+
					"since without a method the Cachix cache's preference, which may be xz, is used", n)
			}
		}
	}
	for _, f := range []struct {
		name  string
		dst   *int
		check func(int) error
	}{
		{"chunkSize", &m.Push.ChunkSize, target.CheckChunkSize},
		{"numConcurrentChunks", &m.Push.NumConcurrentChunks, target.CheckConcurrentChunks},
	} {
		if v := obj.Get(f.name); !v.Null() {
			if err := p.integer(v, f.dst); err != nil {
				return err
			}
			if err := f.check(*f.dst); err != nil {
				return p.errf(v.Path, "%v", err)
			}
		}
	}
	if v := obj.Get("omitDeriver"); !v.Null() {
		b, ok := v.Bool()
		if !ok {
			return p.errf(v.Path, "must be true or false, not %s", v.Kind())
		}
		m.Push.OmitDeriver = b
	}
	if v := obj.Get("exclude"); !v.Null() {
		e, err := p.exclude(v)
		if err != nil {
			return err
		}
		m.Push.Exclude = e
	}
	if v := obj.Get("upstream"); !v.Null() {
		u, err := p.upstream(v)
		if err != nil {
			return err
		}
		m.Push.Upstream = u
	}
	return nil
}

// strings reads an array of strings.
func (p *parser) strings(v jsonfield.Value) ([]string, error) {
	items, ok := v.Array()
	if !ok {
		return nil, p.errf(v.Path, "must be an array of strings, not %s", v.Kind())
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if err := p.str(it, &s); err != nil {
			return nil, err
		}
		if s == "" {
			return nil, p.errf(it.Path, "must not be empty")
		}
		out = append(out, s)
	}
	return out, nil
}

// exclude reads push.exclude.
func (p *parser) exclude(v jsonfield.Value) (*Exclude, error) {
	obj, err := p.object(v)
	if err != nil {
		return nil, err
	}
	p.known(obj, "names", "regex", "maxNarSize", "mode")
	e := &Exclude{}
	// Each pattern is checked by the rule push applies (selection.Compile).
	if f := obj.Get("names"); !f.Null() {
		if e.Names, err = p.strings(f); err != nil {
			return nil, err
		}
		for i, g := range e.Names {
			if err := (selection.Rules{Names: []string{g}}).Check(); err != nil {
				return nil, p.errf(fmt.Sprintf("%s[%d]", f.Path, i), "%v", err)
			}
		}
	}
	if f := obj.Get("regex"); !f.Null() {
		if e.Regex, err = p.strings(f); err != nil {
			return nil, err
		}
		for i, re := range e.Regex {
			if err := (selection.Rules{Regex: []string{re}}).Check(); err != nil {
				return nil, p.errf(fmt.Sprintf("%s[%d]", f.Path, i), "%v", err)
			}
		}
	}
	if f := obj.Get("maxNarSize"); !f.Null() {
		// Bytes, or a string with a suffix as nix.conf takes it ("1G").
		if text, ok := f.Text(); ok {
			if e.MaxNarSize, err = selection.ParseSize(text); err != nil {
				return nil, p.errf(f.Path, "%v", err)
			}
		} else {
			var n int
			if err := p.integer(f, &n); err != nil {
				return nil, p.errf(f.Path, "must be a number of bytes or a size such as \"1G\", not %s", f.Kind())
			}
			if n < 1 {
				return nil, p.errf(f.Path, "must be at least 1, not %d", n)
			}
			e.MaxNarSize = uint64(n)
		}
	}
	if f := obj.Get("mode"); !f.Null() {
		var s string
		if err := p.str(f, &s); err != nil {
			return nil, err
		}
		if e.Mode, err = selection.ParseMode(s); err != nil || s == "" {
			return nil, p.errf(f.Path, "%q is not an exclude mode (want \"prune\" or \"upstream\")", s)
		}
	}
	return e, nil
}

// upstream reads push.upstream.
func (p *parser) upstream(v jsonfield.Value) (*Upstream, error) {
	obj, err := p.object(v)
	if err != nil {
		return nil, err
	}
	p.known(obj, "filter", "keys")
	u := &Upstream{}
	if f := obj.Get("filter"); !f.Null() {
		b, ok := f.Bool()
		if !ok {
			return nil, p.errf(f.Path, "must be true or false, not %s", f.Kind())
		}
		u.Filter = &b
	}
	if f := obj.Get("keys"); !f.Null() {
		if u.Keys, err = p.strings(f); err != nil {
			return nil, err
		}
		for i, k := range u.Keys {
			if strings.ContainsAny(k, ": \t") {
				return nil, p.errf(fmt.Sprintf("%s[%d]", f.Path, i), "%q is not a key name (a name such as cache.nixos.org-1, without the key)", k)
			}
		}
	}
	return u, nil
}

// IsManifestArg says whether a command-line argument that follows a cache
// names a manifest: a name ending in .json that is not a directory and not
// in the Nix store at storeDir (also through symlinks): a store path named
// *.json, such as om ci run's result, is a store path. A missing file
// outside the store is a manifest, reported as unreadable.
func IsManifestArg(a, storeDir string) bool {
	if !strings.HasSuffix(a, ".json") {
		return false
	}
	if _, in := store.Within(a, storeDir); in {
		return false
	}
	fi, err := os.Stat(a)
	return err != nil || !fi.IsDir()
}

package manifest_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/selection"
)

const sp = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12.1"

func TestParseValid(t *testing.T) {
	t.Parallel()
	in := `{
	  "version": 1,
	  "cache": {"name": "mycache", "host": null, "url": null, "authTokenFile": "/run/secrets/cachix-token", "signingKeyFile": null},
	  "paths": [
	    {"name": "hello", "storePath": "` + sp + `", "pin": {"name": "laptop-hello", "keep": {"revisions": 3}}},
	    {"storePath": "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40", "pin": {"name": "g", "keep": "forever"}},
	    {"storePath": "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543211-x", "pin": {"name": "d", "keep": {"days": 7}}}
	  ],
	  "push": {"jobs": 4, "compression": "xz", "compressionLevel": 6, "omitDeriver": true},
	  "origin": "home-manager",
	  "someFutureField": {"ignored": true}
	}`
	m, err := manifest.Parse([]byte(in), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	if m.Cache.Name != "mycache" || m.Cache.Host != "" || m.Cache.AuthTokenFile != "/run/secrets/cachix-token" {
		t.Errorf("cache = %+v", m.Cache)
	}
	if len(m.Paths) != 3 || m.Paths[1].Name != "glibc-2.40" || *m.Paths[0].Pin.Keep != (backend.Keep{Kind: backend.KeepRevisions, Value: 3}) ||
		m.Paths[1].Pin.Keep.Kind != backend.KeepForever || *m.Paths[2].Pin.Keep != (backend.Keep{Kind: backend.KeepDays, Value: 7}) {
		t.Errorf("paths = %+v", m.Paths)
	}
	if m.Push.Jobs != 4 || m.Push.Compression != "xz" || *m.Push.CompressionLevel != 6 || !m.Push.OmitDeriver || m.Origin != "home-manager" {
		t.Errorf("push = %+v", m.Push)
	}
	// Round trip: what we marshal parses back to the same thing.
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := manifest.Parse(b, "again.json")
	if err != nil {
		t.Fatalf("re-parsing %s: %v", b, err)
	}
	if m2.Paths[1].Pin.Keep.Kind != backend.KeepForever || m2.Paths[2].Pin.Keep.Value != 7 {
		t.Errorf("round trip lost keep: %s", b)
	}
}

// TestParseSelection reads push.exclude, push.upstream and paths[].closure,
// which older manifests do not have.
func TestParseSelection(t *testing.T) {
	t.Parallel()
	in := `{"version": 1, "cache": {"url": "file:///srv/cache"},
	  "paths": [{"storePath": "` + sp + `", "closure": "build"}, {"storePath": "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40", "closure": null}],
	  "push": {"exclude": {"names": ["*-doc"], "regex": ["-source$"], "maxNarSize": "1G", "mode": "upstream"},
	           "upstream": {"filter": false, "keys": ["company-1"]}}}`
	m, err := manifest.Parse([]byte(in), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	if m.Paths[0].Closure != selection.Build || m.Paths[1].Closure != "" {
		t.Errorf("closures = %q, %q", m.Paths[0].Closure, m.Paths[1].Closure)
	}
	r := m.Selection()
	if len(r.Names) != 1 || r.Names[0] != "*-doc" || r.Regex[0] != "-source$" || r.MaxNarSize != 1<<30 || r.Mode != selection.Upstream ||
		r.UpstreamFilter == nil || *r.UpstreamFilter || r.UpstreamKeys[0] != "company-1" {
		t.Errorf("selection = %+v", r)
	}
	// A number of bytes is a size too; a manifest without the fields has no rules.
	m, err = manifest.Parse([]byte(`{"version":1,"cache":{"name":"c"},"paths":[],"push":{"exclude":{"maxNarSize":4096}}}`), "m.json")
	if err != nil || m.Selection().MaxNarSize != 4096 || m.Selection().Mode != "" {
		t.Errorf("maxNarSize in bytes: %+v, %v", m.Selection(), err)
	}
	m, err = manifest.Parse([]byte(`{"version":1,"cache":{"name":"c"},"paths":[]}`), "m.json")
	if err != nil || m.Selection().Excludes() || m.Selection().UpstreamFilter != nil {
		t.Errorf("no rules: %+v, %v", m.Selection(), err)
	}
	// Round trip.
	b, _ := json.Marshal(m)
	if strings.Contains(string(b), "exclude") || strings.Contains(string(b), "closure") {
		t.Errorf("a manifest without selection marshals with it: %s", b)
	}
}

func TestParseMinimalFileCache(t *testing.T) {
	t.Parallel()
	m, err := manifest.Parse([]byte(`{"version":1,"cache":{"url":"file:///srv/cache"},"paths":[]}`), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	if m.Cache.URL != "file:///srv/cache" || len(m.Paths) != 0 || m.Cache.Host != "" {
		t.Errorf("got %+v", m)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	ok := `"cache":{"name":"c"},"paths":[]`
	tests := []struct {
		name, in, wantField, wantText string
	}{
		{"malformed JSON", `{"version": 1,`, "", "not valid JSON"},
		{"not an object", `[1]`, "", "must be a JSON object"},
		{"no version", `{` + ok + `}`, "version", "is required"},
		{"wrong version", `{"version":2,` + ok + `}`, "version", "only version 1"},
		{"version type", `{"version":"1",` + ok + `}`, "version", "must be a number, not a string"},
		{"no cache", `{"version":1,"paths":[]}`, "cache", "is required"},
		{"cache not object", `{"version":1,"cache":"c","paths":[]}`, "cache", "must be an object"},
		{"name and url", `{"version":1,"cache":{"name":"c","url":"file:///x"},"paths":[]}`, "cache", "exactly one"},
		{"neither", `{"version":1,"cache":{},"paths":[]}`, "cache", "either name"},
		{"bad url", `{"version":1,"cache":{"url":"http://x"},"paths":[]}`, "cache.url", "not a supported"},
		{"relative file url", `{"version":1,"cache":{"url":"file://rel/x"},"paths":[]}`, "cache.url", "absolute path"},
		{"bad name", `{"version":1,"cache":{"name":"My Cache"},"paths":[]}`, "cache.name", "not a valid"},
		{"name type", `{"version":1,"cache":{"name":3},"paths":[]}`, "cache.name", "must be a string, not a number"},
		{"token in store", `{"version":1,"cache":{"name":"c","authTokenFile":"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-token"},"paths":[]}`, "cache.authTokenFile", "inside the Nix store"},
		{"key in store", `{"version":1,"cache":{"name":"c","signingKeyFile":"/nix/./store//x"},"paths":[]}`, "cache.signingKeyFile", "inside the Nix store"},
		{"relative token", `{"version":1,"cache":{"name":"c","authTokenFile":"token"},"paths":[]}`, "cache.authTokenFile", "absolute path"},
		{"no paths", `{"version":1,"cache":{"name":"c"}}`, "paths", "is required"},
		{"paths type", `{"version":1,"cache":{"name":"c"},"paths":{}}`, "paths", "must be an array, not an object"},
		{"missing storePath", `{"version":1,"cache":{"name":"c"},"paths":[{"name":"x"}]}`, "paths[0].storePath", "is required"},
		{"storePath misspelt", `{"version":1,"cache":{"name":"c"},"paths":[{"storPath":"` + sp + `"}]}`, "paths[0].storePath", "is required; paths[0].storPath is not a field of manifest version 1: is it storePath misspelt?"},
		{"cache misspelt", `{"version":1,"cahce":{"name":"c"},"paths":[]}`, "cache", "is required; cahce is not a field of manifest version 1: is it cache misspelt?"},
		{"Version capitalised", `{"Version":1,"cache":{"name":"c"},"paths":[]}`, "version", "is it version misspelt?"},
		{"pin name misspelt", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{"nmae":"x"}}]}`, "paths[0].pin.name", "paths[0].pin.nmae is not a field"},
		{"storePath outside store", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"/usr/bin/ls"}]}`, "paths[0].storePath", "not a path in /nix/store"},
		{"storePath inside path", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `/bin/hello"}]}`, "paths[0].storePath", "points inside a store path"},
		{"pin without name", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{}}]}`, "paths[0].pin.name", "is required"},
		{"bad keep", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{"name":"p","keep":{"weeks":2}}}]}`, "paths[0].pin.keep", "unknown key"},
		{"keep zero", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{"name":"p","keep":{"days":0}}}]}`, "paths[0].pin.keep.days", "at least 1"},
		{"keep string", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{"name":"p","keep":"always"}}]}`, "paths[0].pin.keep", "not a keep policy"},
		{"duplicate pin", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{"name":"p"}},{"storePath":"` + sp + `","pin":{"name":"p"}}]}`, "paths[1].pin.name", "also used by paths[0]"},
		{"one path, two pins", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","pin":{"name":"p"}},{"storePath":"` + sp + `","pin":{"name":"q"}}]}`, "paths[1].pin.name", `is given two pins, "p" (paths[0]) and "q"`},
		{"jobs", `{"version":1,` + ok + `,"push":{"jobs":0}}`, "push.jobs", "between 1 and 256"},
		{"compression", `{"version":1,` + ok + `,"push":{"compression":"gzip"}}`, "push.compression", `"zstd" or "xz"`},
		{"level", `{"version":1,` + ok + `,"push":{"compressionLevel":2.5}}`, "push.compressionLevel", "whole number"},
		{"xz level", `{"version":1,` + ok + `,"push":{"compression":"xz","compressionLevel":12}}`, "push.compressionLevel", "xz compression level 12 out of range 0–9"},
		{"zstd level", `{"version":1,` + ok + `,"push":{"compressionLevel":17}}`, "push.compressionLevel", "out of range 0–16"},
		{"omitDeriver", `{"version":1,` + ok + `,"push":{"omitDeriver":"yes"}}`, "push.omitDeriver", "true or false"},
		{"closure", `{"version":1,"cache":{"name":"c"},"paths":[{"storePath":"` + sp + `","closure":"buildtime"}]}`, "paths[0].closure", `want "runtime" or "build"`},
		{"exclude type", `{"version":1,` + ok + `,"push":{"exclude":["*-doc"]}}`, "push.exclude", "must be an object, not an array"},
		{"exclude names type", `{"version":1,` + ok + `,"push":{"exclude":{"names":"*-doc"}}}`, "push.exclude.names", "must be an array of strings"},
		{"exclude glob", `{"version":1,` + ok + `,"push":{"exclude":{"names":["ok","[x"]}}}`, "push.exclude.names[1]", `pattern "[x"`},
		{"exclude regex", `{"version":1,` + ok + `,"push":{"exclude":{"regex":["(x"]}}}`, "push.exclude.regex[0]", `regex "(x"`},
		{"exclude empty", `{"version":1,` + ok + `,"push":{"exclude":{"regex":[""]}}}`, "push.exclude.regex[0]", "must not be empty"},
		{"max size", `{"version":1,` + ok + `,"push":{"exclude":{"maxNarSize":"1X"}}}`, "push.exclude.maxNarSize", "not a size"},
		{"max size zero", `{"version":1,` + ok + `,"push":{"exclude":{"maxNarSize":0}}}`, "push.exclude.maxNarSize", "at least 1"},
		{"max size type", `{"version":1,` + ok + `,"push":{"exclude":{"maxNarSize":true}}}`, "push.exclude.maxNarSize", "number of bytes"},
		{"mode", `{"version":1,` + ok + `,"push":{"exclude":{"mode":"skip"}}}`, "push.exclude.mode", `want "prune" or "upstream"`},
		{"upstream filter", `{"version":1,` + ok + `,"push":{"upstream":{"filter":"on"}}}`, "push.upstream.filter", "true or false"},
		{"upstream key", `{"version":1,` + ok + `,"push":{"upstream":{"keys":["cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="]}}}`, "push.upstream.keys[0]", "not a key name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := manifest.Parse([]byte(tt.in), "my.json")
			if !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			var me *manifest.Error
			if !errors.As(err, &me) || me.File != "my.json" || me.Field != tt.wantField {
				t.Fatalf("error %q: want field %q in file my.json", err, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantText) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.wantText)
			}
		})
	}
}

func TestSecretBehindSymlinkToStore(t *testing.T) {
	t.Parallel()
	// Any existing store file will do as the link target; /nix/store itself is enough.
	link := filepath.Join(t.TempDir(), "token")
	if err := os.Symlink("/nix/store", link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/nix/store"); err != nil {
		t.Skip("no /nix/store on this machine")
	}
	_, err := manifest.Parse([]byte(`{"version":1,"cache":{"name":"c","authTokenFile":"`+link+`"},"paths":[]}`), "m.json")
	if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "inside the Nix store") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "nope.json")
	_, err := manifest.ParseFile(f, "")
	if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), f) {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(f, []byte("{\n  \"version\": 1,\n  oops\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = manifest.ParseFile(f, "")
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want a line number, got %v", err)
	}
}

// TestParseRefusesNamesNixRejects: store paths whose hash or name Nix
// would reject, and pin names that could never be created, fail the check
// with a short escaped message instead of waiting in a queue for ever.
func TestParseRefusesNamesNixRejects(t *testing.T) {
	t.Parallel()
	const hash = "0123456789abcdfghijklmnpqrsvwxyz"
	tests := []struct {
		name, storePath, pin, want string
	}{
		{name: "NUL", storePath: "/nix/store/" + hash + "-a\x00b", want: `'\x00'`},
		{name: "newline", storePath: "/nix/store/" + hash + "-a\nb", want: `'\n'`},
		{name: "ESC", storePath: "/nix/store/" + hash + "-a\x1b]0;x", want: `'\x1b'`},
		// JSON decoding turns invalid UTF-8 into U+FFFD, which is refused.
		{name: "non-UTF-8", storePath: "/nix/store/" + hash + "-a\xfe", want: "'\uFFFD'"},
		{name: "50 MB", storePath: "/nix/store/" + hash + "-" + strings.Repeat("n", 50<<20), want: "52428800 bytes long"},
		{name: "bad character", storePath: "/nix/store/" + hash + "-a:b", want: `':'`},
		{name: "wrong hash", storePath: "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-hello", want: "not nix-base32"},
		{name: "short hash", storePath: "/nix/store/abc-hello", want: "32-character hash"},
		{name: "pin with newline", storePath: "/nix/store/" + hash + "-hello", pin: "a\nb", want: "control character"},
		{name: "pin of 1 MB", storePath: "/nix/store/" + hash + "-hello", pin: strings.Repeat("p", 1<<20), want: "at most 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entry := map[string]any{"storePath": tt.storePath}
			if tt.pin != "" {
				entry["pin"] = map[string]any{"name": tt.pin}
			}
			raw, err := json.Marshal(map[string]any{"version": 1, "cache": map[string]any{"name": "c"}, "paths": []any{entry}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = manifest.Parse(raw, "m.json")
			if !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg[:min(len(msg), 400)], tt.want)
			}
			if strings.ContainsAny(msg, "\n\x00\x1b") || len(msg) > 500 || !utf8.ValidString(msg) {
				t.Errorf("not one short, escaped line (%d bytes): %q", len(msg), msg[:min(len(msg), 600)])
			}
		})
	}
}

// TestReadFileRefusesSpecialFiles: a FIFO fails at once instead of
// blocking, a device or an oversized file fails instead of eating memory.
func TestReadFileRefusesSpecialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(manifest.MaxSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tests := []struct{ file, want string }{
		{fifo, "is a FIFO (named pipe), not a regular file"},
		{"/dev/zero", "is a character device, not a regular file"},
		{dir, "is a directory, not a regular file"},
		{big, "a manifest may be at most 64 MiB"},
		{filepath.Join(dir, "missing.json"), "cannot read: no such file"},
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() { _, err := manifest.ParseFile(tt.file, ""); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFile(%s) = %v, want %q", tt.file, err, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ParseFile(%s) blocked", tt.file)
		}
	}
}

// TestUnknownFields: fields version 1 does not have are ignored (forward
// compatible) and listed, at every level, so the CLI can warn about a
// misspelt one; every field there is, as the Nix modules write them, is
// known.
func TestUnknownFields(t *testing.T) {
	full := `{"version":1,"origin":"nixos",
	 "cache":{"name":"c","host":"https://cachix.example.com","url":null,"authTokenFile":"/run/t","signingKeyFile":"/run/k"},
	 "paths":[{"name":"hello","storePath":"` + sp + `","closure":"runtime","pin":{"name":"p","keep":{"days":3}}}],
	 "push":{"jobs":2,"compression":"zstd","compressionLevel":3,"chunkSize":33554432,"numConcurrentChunks":4,"omitDeriver":true,
	  "exclude":{"names":["*-doc"],"regex":["x"],"maxNarSize":"1G","mode":"prune"},"upstream":{"filter":true,"keys":["cache.nixos.org-1"]}}}`
	m, err := manifest.Parse([]byte(full), "full.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Unknown) != 0 {
		t.Errorf("a manifest with every field: unknown %q", m.Unknown)
	}
	typos := `{"version":1,"extra":1,"cache":{"url":"file:///srv/c","nmae":"x"},"paths":[{"storePath":"` + sp + `","pinn":{}}],
	 "push":{"compresion":"xz","exclude":{"name":["a"]},"upstream":{"key":[]}}}`
	m, err = manifest.Parse([]byte(typos), "typos.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"extra", "cache.nmae", "paths[0].pinn", "push.compresion", "push.exclude.name", "push.upstream.key"}
	if !slices.Equal(m.Unknown, want) {
		t.Errorf("unknown %q, want %q", m.Unknown, want)
	}
}

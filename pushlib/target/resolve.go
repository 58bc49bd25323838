// Package target resolves one push's target: which cache (a Cachix cache,
// a file:// or an s3:// binary cache), its credentials, and the push's
// settings (compression, jobs, deriver), from the layers a user sets them
// in, highest first (design.md §3):
//
//  1. the command line (--cache/--to/--host, --auth-token-file, …);
//  2. the manifest's "cache" and "push" objects;
//  3. the environment: CACHIX_AUTH_TOKEN, CACHIX_SIGNING_KEY, and for S3
//     the AWS_* variables;
//  4. cachix.dhall (authToken, hostname, and the secretKey of the last
//     binaryCaches entry named after the cache, as in cachix), read for
//     Cachix caches only; for S3, the shared credentials file.
//
// One precedence function (pick) decides every setting: the highest layer
// that sets it wins, and is the only one consulted: a flag that names a
// file makes the manifest's file irrelevant, even if that one is missing.
// Secret files are read at run time, trimmed of surrounding whitespace,
// and refused when they live in the Nix store (it is world-readable); an
// explicitly named file that is missing, unreadable or empty is an error,
// never a silent fall-through. A missing or unreadable cachix.dhall counts
// as empty, as in cachix; a malformed one is an error. Compression is
// checked by the rule manifest check applies (narstream.Choose).
//
// Nothing here ever puts a token or key into an error, a warning or a
// source string: they name where a secret came from, never what it is.
// Every error is bad input (fault.ErrBadInput).
package target

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/target/dhall"
)

// DefaultJobs is how many paths a push uploads at once, as cachix.
const DefaultJobs = 8

// Options are what resolving needs besides the layers.
type Options struct {
	// ConfigPath is the cachix.dhall to read ("" = DefaultConfigPath).
	ConfigPath string
	// ConfigRequired makes a ConfigPath that cannot be read an error (it
	// was named explicitly: --config, the modules' configFile); otherwise
	// a missing file counts as empty, as in cachix.
	ConfigRequired bool
	// SigningKeyName names a bare (Cachix-form) signing key; "" means
	// "<cache>.cachix.org-1" for a Cachix cache. A plain binary cache needs
	// it, or a key in Nix's name:base64 form.
	SigningKeyName string
	// StoreDir is the Nix store secrets must stay out of ("" =
	// $NIX_STORE_DIR, else /nix/store; /nix/store is always checked too).
	StoreDir string
	// LookupEnv reads the environment (nil = os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// ReadOnly is a dry run: an S3 bucket may then be read without keys.
	ReadOnly bool
}

// Target is one resolved push target: where, with which credentials and
// settings. Its String and GoString name the sources of its secrets, never
// the secrets.
type Target struct {
	Ref Ref
	// Token is the Cachix auth token ("" for none); TokenSource names
	// where it came from.
	Token, TokenSource string
	// SigningKey signs narinfos (nil for none); SigningKeySource names
	// where it came from.
	SigningKey       *signing.Key
	SigningKeySource string
	// S3 are the keys of an s3:// cache (nil for other caches).
	S3 *S3Credentials
	// Compression is what the user asked for; nil leaves it to the cache's
	// preference, else zstd level 2. An empty Method with a level keeps the
	// cache's method at that level.
	Compression *narstream.Compression
	// Jobs is the number of paths uploaded at once.
	Jobs int
	// ChunkSize and ConcurrentChunks size a Cachix upload's parts
	// (0: not given, the defaults).
	ChunkSize, ConcurrentChunks int
	// ConfigPath is the cachix.dhall consulted for a Cachix cache ("" for
	// none), and ConfigName how messages name it: "$XDG_CONFIG_HOME/…"
	// when that is where it is.
	ConfigPath, ConfigName string
	// OmitDeriver leaves the deriver out of narinfos.
	OmitDeriver bool
	// Warnings are worth telling the user but do not stop the push (a
	// world-readable secret file, an empty variable).
	Warnings []string
}

// Key identifies the cache (see Ref.Key).
func (t *Target) Key() string { return t.Ref.Key() }

// String names the cache and where its secrets come from.
func (t Target) String() string {
	tok := "no auth token"
	if t.Token != "" {
		tok = "auth token from " + t.TokenSource
	}
	key := "no signing key"
	if t.SigningKey != nil {
		key = "signing key " + t.SigningKey.Name + " from " + t.SigningKeySource
	}
	s := tok + ", " + key
	if t.S3 != nil {
		s += ", S3 keys from " + t.S3.Source()
	}
	if t.Ref != nil {
		s = t.Ref.String() + " (" + s + ")"
	}
	return s
}

// GoString makes %#v as safe as %v.
func (t Target) GoString() string { return "target.Target{" + t.String() + "}" }

// Format makes every verb print String, so that %+v cannot show the token.
func (t Target) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(t.String())) }

// resolver carries one resolution's options.
type resolver struct {
	opts     Options
	lookup   func(string) (string, bool)
	storeDir string
	warnings []string
	// cfgPath is the cachix.dhall read; cfgChecked, whether its exposure
	// was checked.
	cfgPath    string
	cfgChecked bool
}

func newResolver(opts Options) *resolver {
	r := &resolver{opts: opts, lookup: opts.LookupEnv}
	if r.lookup == nil {
		r.lookup = os.LookupEnv
	}
	r.storeDir = opts.StoreDir
	if r.storeDir == "" {
		r.storeDir, _ = r.lookup("NIX_STORE_DIR")
	}
	return r
}

// ResolveRef decides only the cache, reading no secret: what the
// activation fast path needs to find its records (a Cachix host may still
// come from cachix.dhall).
func ResolveRef(opts Options, layers ...Layer) (Ref, error) {
	r := newResolver(opts)
	ls := make([]layer, len(layers))
	for i, l := range layers {
		ls[i] = of(l)
	}
	ref, _, err := r.ref(ls)
	return ref, err
}

// Resolve decides the target from the layers given (highest first:
// usually the command line, then a manifest), the environment and
// cachix.dhall, reads its secrets and checks its settings.
func Resolve(opts Options, layers ...Layer) (*Target, error) {
	r := newResolver(opts)
	ls := make([]layer, 0, len(layers)+2)
	for _, l := range layers {
		ls = append(ls, of(l))
	}
	ref, ls, err := r.ref(ls)
	if err != nil {
		return nil, err
	}
	t := &Target{Ref: ref, OmitDeriver: first(ls, func(l layer) bool { return l.omitDeriver })}
	if _, cachix := ref.(Cachix); cachix {
		if t.Token, t.TokenSource, err = r.token(ls); err != nil {
			return nil, err
		}
	} else {
		for _, l := range ls {
			if l.token.file != "" {
				// Not read: a plain binary cache takes no token (nor fails on one).
				r.warnings = append(r.warnings, fmt.Sprintf("%s is for Cachix caches; %s takes none, so it is not read", l.token.source, ref))
				break
			}
		}
		if r.opts.ConfigRequired && r.opts.ConfigPath != "" {
			// Named explicitly, and read only for a Cachix cache (its
			// authToken, hostname and that cache's secretKey).
			r.warnings = append(r.warnings, fmt.Sprintf("the cachix config %s (--config) is for Cachix caches; %s does not use it, so it is not read", r.opts.ConfigPath, ref))
		}
	}
	if t.SigningKey, t.SigningKeySource, err = r.signingKey(ls, ref); err != nil {
		return nil, err
	}
	if s3, ok := ref.(S3); ok {
		if t.S3, err = r.s3Credentials(first(ls, func(l layer) string { return l.s3File }), s3); err != nil {
			return nil, fmt.Errorf("%s: %w", s3, err)
		}
	}
	method := first(ls, func(l layer) string { return l.compression })
	level := first(ls, func(l layer) *int { return l.level })
	if t.Compression, err = narstream.Choose(method, level); err != nil {
		return nil, fault.BadInputf("%v", err)
	}
	if t.Jobs = first(ls, func(l layer) int { return l.jobs }); t.Jobs == 0 {
		t.Jobs = DefaultJobs
	} else if err := CheckJobs(t.Jobs); err != nil {
		return nil, fault.BadInputf("jobs %v", err)
	}
	if t.ChunkSize = first(ls, func(l layer) int { return l.chunkSize }); t.ChunkSize != 0 {
		if err := CheckChunkSize(t.ChunkSize); err != nil {
			return nil, fault.BadInputf("chunk size %v", err)
		}
	}
	if t.ConcurrentChunks = first(ls, func(l layer) int { return l.chunks }); t.ConcurrentChunks != 0 {
		if err := CheckConcurrentChunks(t.ConcurrentChunks); err != nil {
			return nil, fault.BadInputf("concurrent chunks %v", err)
		}
	}
	if _, ok := ref.(Cachix); !ok && (t.ChunkSize != 0 || t.ConcurrentChunks != 0) {
		hint := "a file cache writes each NAR whole"
		if _, s3 := ref.(S3); s3 {
			hint = "an s3:// cache's part size is its URL's buffer-size"
		}
		r.warnings = append(r.warnings, fmt.Sprintf("the chunk size and concurrent chunks (-s, -n) apply to Cachix uploads; %s, so they are ignored for %s", hint, ref))
	}
	if _, ok := ref.(Cachix); ok {
		t.ConfigPath = r.cfgPath
		if t.ConfigPath == "" {
			t.ConfigPath = r.configPath()
		}
		t.ConfigName = ConfigName(t.ConfigPath, r.lookup)
	}
	t.Warnings = r.warnings
	return t, nil
}

// ConfigName is how messages name the cachix.dhall at path:
// "$XDG_CONFIG_HOME/cachix/cachix.dhall" or "~/.config/cachix/cachix.dhall"
// when it is the default one there, followed by the path itself.
func ConfigName(path string, lookup func(string) (string, bool)) string {
	if path == "" {
		return "cachix.dhall (no home directory to find it in)"
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if d, ok := lookup("XDG_CONFIG_HOME"); ok && filepath.IsAbs(d) && path == filepath.Join(d, "cachix", "cachix.dhall") {
		return "$XDG_CONFIG_HOME/cachix/cachix.dhall (" + path + ")"
	}
	if strings.HasSuffix(path, "/.config/cachix/cachix.dhall") && path == DefaultConfigPath(lookup) {
		return "~/.config/cachix/cachix.dhall (" + path + ")"
	}
	return path
}

// ref decides the cache: the highest layer that names one (a Cachix name
// or a URL) decides its kind and name; a Cachix host comes from the
// highest layer that names one, cachix.dhall's hostname included. It
// returns the layers with the environment's and (for Cachix) cachix.dhall's
// added below them.
func (r *resolver) ref(ls []layer) (Ref, []layer, error) {
	named, _ := pick(ls, func(l layer) (layer, bool) { return l, l.cache != "" || l.url != "" })
	var ref Ref
	switch {
	case named.url != "" && named.cache != "":
		return nil, nil, fault.BadInputf("give either --cache or --to, not both")
	case named.url != "":
		u, err := ParseURL(named.url)
		if err != nil {
			return nil, nil, err
		}
		ref = u
		ls = append(ls, r.environment())
	case named.cache != "":
		ls = append(ls, r.environment())
		cfg, err := r.config(named.cache)
		if err != nil {
			return nil, nil, err
		}
		ls = append(ls, cfg)
		c, err := cachixRef(named.cache, first(ls, func(l layer) string { return l.host }))
		if err != nil {
			return nil, nil, err
		}
		ref = c
	default:
		return nil, nil, fault.BadInputf("no cache to push to: give --cache NAME (Cachix) or --to URL (a binary cache such as file:///srv/cache)")
	}
	return ref, ls, nil
}

// environment is the layer of CACHIX_AUTH_TOKEN and CACHIX_SIGNING_KEY.
func (r *resolver) environment() layer {
	return layer{token: r.env("CACHIX_AUTH_TOKEN"), key: r.env("CACHIX_SIGNING_KEY")}
}

// env reads a variable as a secret, trimmed. Set but empty (or only
// whitespace) counts as unset, with a warning once it is reached: cachix
// lets CACHIX_AUTH_TOKEN="" win and pushes with no token, and fails on
// CACHIX_SIGNING_KEY="", but an empty variable is almost always a CI
// secret that was not available (a fork's pull request, a typo in the
// secret's name), where the user expects the other credentials to be
// used, not a silent unauthenticated push.
func (r *resolver) env(name string) secret {
	v, ok, empty := lookupEnv(r.lookup, name)
	if !ok && !empty {
		return secret{}
	}
	return secret{value: v, source: "$" + name, empty: empty}
}

// lookupEnv reads a variable, trimmed: ok when it has a value; empty when
// it is set to nothing but whitespace, which counts as unset (see env).
func lookupEnv(lookup func(string) (string, bool), name string) (v string, ok, empty bool) {
	v, set := lookup(name)
	if !set {
		return "", false, false
	}
	if v = strings.TrimSpace(v); v == "" {
		return "", false, true
	}
	return v, true, false
}

// emptyWarning says a variable (named by source, "$NAME") was set but
// empty and ignored.
func emptyWarning(source string) string { return source + " is set but empty; ignoring it" }

// secret picks the highest layer's secret, warning about empty variables
// passed on the way, and reads it.
func (r *resolver) secret(ls []layer, what string, get func(layer) secret) (text, source string, err error) {
	s, at := pick(ls, func(l layer) (secret, bool) { return get(l), get(l).set() })
	for i, l := range ls {
		if (at < 0 || i < at) && get(l).empty {
			r.warnings = append(r.warnings, emptyWarning(get(l).source))
		}
	}
	switch {
	case at < 0:
		return "", "", nil
	case s.file != "":
		text, err = r.readSecretFile(what, s)
		return text, s.source, err
	case s.fromConfig:
		r.checkConfigExposure()
	}
	return s.value, s.source, nil
}

// token resolves the auth token.
func (r *resolver) token(ls []layer) (string, string, error) {
	token, source, err := r.secret(ls, "auth token", func(l layer) secret { return l.token })
	if err != nil || token == "" {
		return "", "", err
	}
	if err := checkToken(token); err != nil {
		return "", "", fmt.Errorf("using auth token from %s: %w", source, err)
	}
	return token, source, nil
}

// signingKey resolves and parses the signing key.
func (r *resolver) signingKey(ls []layer, ref Ref) (*signing.Key, string, error) {
	text, source, err := r.secret(ls, "signing key", func(l layer) secret { return l.key })
	if err == nil && source == "" && r.opts.SigningKeyName != "" {
		r.warnings = append(r.warnings, "--signing-key-name names a signing key, but none is given (--signing-key-file, "+
			"$CACHIX_SIGNING_KEY or a manifest's signingKeyFile): the narinfos are not signed")
	}
	if err != nil || source == "" {
		return nil, "", err
	}
	name := r.opts.SigningKeyName
	if c, ok := ref.(Cachix); ok && name == "" {
		name = c.Name + ".cachix.org-1"
	}
	key, err := signing.Parse(text, name)
	if err != nil {
		return nil, "", fmt.Errorf("parsing signing key from %s: %w", source, err)
	}
	if key.Name == "" {
		return nil, "", fmt.Errorf("parsing signing key from %s: %w: a bare key has no name here; write it in Nix's name:base64 form or give --signing-key-name", source, signing.ErrBadKey)
	}
	return key, source, nil
}

// config is cachix.dhall's layer for the Cachix cache name. Missing or
// unreadable means empty, as in cachix; a syntax error is fatal.
func (r *resolver) config(name string) (layer, error) {
	path := r.configPath()
	if path == "" {
		return layer{}, nil
	}
	r.cfgPath = path
	cfg, err := dhall.Load(path)
	var syntax *dhall.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return layer{}, fmt.Errorf("%w: %w", ErrBadConfig, err)
	case err != nil && r.opts.ConfigRequired && r.opts.ConfigPath != "":
		// Named explicitly (--config, the modules' configFile): it must be there.
		return layer{}, fault.BadInputf("cannot read the cachix config %s given with --config: %v", path, fsutil.Cause(err))
	case err != nil:
		return layer{}, nil
	}
	var l layer
	if cfg.Hostname != nil {
		l.host = strings.TrimSpace(*cfg.Hostname)
	}
	// cachix counts authToken = "" as "no token".
	if cfg.AuthToken != nil && strings.TrimSpace(*cfg.AuthToken) != "" {
		l.token = secret{value: strings.TrimSpace(*cfg.AuthToken), source: "authToken in " + path, fromConfig: true}
	}
	if k, ok := cfg.SecretKey(name); ok {
		// An entry with an empty key fails when parsed, as in cachix.
		l.key = secret{value: k, source: fmt.Sprintf("binaryCaches secretKey for %q in %s", name, path), fromConfig: true}
	}
	return l, nil
}

// configPath is the cachix.dhall to read, absolute (as cachix does; it also
// makes messages unambiguous), or "".
func (r *resolver) configPath() string {
	path := r.opts.ConfigPath
	if path == "" {
		path = DefaultConfigPath(r.lookup)
	}
	if path == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path
}

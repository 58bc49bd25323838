// Package creds finds the Cachix auth token and the signing key a push
// uses, from the places a Nix user keeps them.
//
// Precedence, highest first, decided separately for the token and for the
// signing key (design.md §3):
//
//  1. the command-line flag (--auth-token-file, --signing-key-file);
//  2. the manifest's cache.authTokenFile / cache.signingKeyFile;
//  3. the environment: CACHIX_AUTH_TOKEN / CACHIX_SIGNING_KEY;
//  4. cachix.dhall: authToken, and the secretKey of the last binaryCaches
//     entry whose name is the cache's (the last wins, as in cachix).
//
// The first source that is set is the only one consulted: a flag that names
// a file makes the manifest's file irrelevant, even if that one is missing.
// Files are read at run time, trimmed of surrounding whitespace, and refused
// when they live in the Nix store (it is world-readable). An explicitly
// named file that is missing, unreadable or empty is an error, never a
// silent fall-through. A missing or unreadable cachix.dhall counts as empty,
// as in cachix; a malformed one is an error.
//
// Nothing here ever puts a token or key into an error, a warning or a
// Source string: they name where a secret came from, never what it is.
package creds

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/creds/dhall"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ErrSecretInStore marks a secret file whose path (after cleaning and
// resolving symlinks) lies inside the Nix store, which every user can read.
var ErrSecretInStore = fault.BadInput("secret file is inside the Nix store")

// ErrUnreadable marks a secret file, named explicitly by a flag or the
// manifest, that cannot be opened or read.
var ErrUnreadable = fault.BadInput("cannot read secret file")

// ErrEmptySecret marks an explicitly named secret file that holds nothing
// but whitespace.
var ErrEmptySecret = fault.BadInput("secret file is empty")

// ErrBadToken marks an auth token that cannot be sent as an HTTP header
// (whitespace or control characters inside, or a KEY=value line).
var ErrBadToken = fault.BadInput("invalid auth token")

// ErrBadConfig marks a cachix.dhall that exists but cannot be parsed.
var ErrBadConfig = fault.BadInput("malformed cachix config")

const (
	envToken = "CACHIX_AUTH_TOKEN"
	envKey   = "CACHIX_SIGNING_KEY"
	// maxSecretSize bounds what is read from a secret file, so pointing a
	// flag at a large file or a device cannot eat memory.
	maxSecretSize = 64 << 10
)

// Sources says where to look for credentials.
type Sources struct {
	// CacheName is the Cachix cache name, "" for a plain binary cache. With
	// "" cachix.dhall is not read at all (it only concerns Cachix).
	CacheName string
	// AuthTokenFileFlag and SigningKeyFileFlag come from the command line.
	AuthTokenFileFlag, SigningKeyFileFlag string
	// ManifestAuthTokenFile and ManifestSigningKeyFile come from the manifest.
	ManifestAuthTokenFile, ManifestSigningKeyFile string
	// SigningKeyName names a bare (Cachix-form) key. "" means
	// "<CacheName>.cachix.org-1"; for a plain binary cache the caller must
	// pass one or the key must be in Nix's name:base64 form.
	SigningKeyName string
	// ConfigPath is the cachix.dhall to read; "" means DefaultConfigPath.
	ConfigPath string
	// StoreDir is the Nix store secrets must stay out of; "" means
	// $NIX_STORE_DIR, else /nix/store. /nix/store is always checked too.
	StoreDir string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Credentials is what Resolve found. Empty Token and nil SigningKey mean no
// source had one; the caller decides whether that is fatal (Cachix needs at
// least one of the two).
type Credentials struct {
	Token string
	// TokenSource says where Token came from, e.g. "--auth-token-file
	// /run/secrets/t", "manifest authTokenFile /run/secrets/t",
	// "$CACHIX_AUTH_TOKEN" or "authToken in /root/.config/cachix/cachix.dhall".
	// It never contains the token.
	TokenSource string
	SigningKey  *signing.Key
	// SigningKeySource is like TokenSource, for SigningKey.
	SigningKeySource string
	// Hostname is cachix.dhall's `hostname` (trimmed), "" when absent.
	Hostname string
	// Warnings are conditions worth telling the user about that do not stop
	// the push, such as a secret file readable by every user.
	Warnings []string
}

// String describes the credentials by their sources only, so that logging
// a Credentials value by mistake never prints a secret.
func (c Credentials) String() string {
	tok := "no auth token"
	if c.Token != "" {
		tok = "auth token from " + c.TokenSource
	}
	key := "no signing key"
	if c.SigningKey != nil {
		key = "signing key " + c.SigningKey.Name + " from " + c.SigningKeySource
	}
	return tok + ", " + key
}

// GoString makes %#v as safe as %v.
func (c Credentials) GoString() string { return "creds.Credentials{" + c.String() + "}" }

// resolver carries one Resolve call's inputs and the cachix.dhall it loaded.
type resolver struct {
	s          Sources
	lookup     func(string) (string, bool)
	storeDir   string
	cfg        *dhall.Config
	cfgPath    string
	cfgChecked bool
	warnings   []string
}

// Resolve finds the auth token, the signing key and the Cachix hostname
// according to the precedence in the package comment.
//
// An environment variable that is set but empty (or only whitespace) is
// treated as unset, with a warning, and the search goes on to cachix.dhall.
// cachix itself lets CACHIX_AUTH_TOKEN="" win and push with no token, and
// fails on CACHIX_SIGNING_KEY="". Here an empty variable is taken for what
// it almost always is: a CI secret that was not available (a fork's pull
// request, a typo in the secret's name), where the user expects the other
// credentials to be used, not a silent unauthenticated push.
func Resolve(s Sources) (*Credentials, error) {
	r := &resolver{s: s, lookup: s.LookupEnv}
	if r.lookup == nil {
		r.lookup = os.LookupEnv
	}
	r.storeDir = s.StoreDir
	if r.storeDir == "" {
		r.storeDir, _ = r.lookup("NIX_STORE_DIR")
	}
	if err := r.loadConfig(); err != nil {
		return nil, err
	}
	c := &Credentials{}
	if r.cfg != nil && r.cfg.Hostname != nil {
		c.Hostname = strings.TrimSpace(*r.cfg.Hostname)
	}
	var err error
	if c.Token, c.TokenSource, err = r.token(); err != nil {
		return nil, err
	}
	if c.SigningKey, c.SigningKeySource, err = r.signingKey(); err != nil {
		return nil, err
	}
	c.Warnings = r.warnings
	return c, nil
}

// DefaultConfigPath returns where cachix keeps its config:
// $XDG_CONFIG_HOME/cachix/cachix.dhall, or ~/.config/cachix/cachix.dhall
// when XDG_CONFIG_HOME is unset, empty or relative (the XDG spec says to
// ignore a relative one). Without HOME the user database is asked, as
// NixOS activation runs without HOME. "" if no home can be found.
func DefaultConfigPath(lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if d, ok := lookupEnv("XDG_CONFIG_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "cachix", "cachix.dhall")
	}
	home, ok := lookupEnv("HOME")
	if !ok || home == "" {
		u, err := user.Current()
		if err != nil || u.HomeDir == "" {
			return ""
		}
		home = u.HomeDir
	}
	return filepath.Join(home, ".config", "cachix", "cachix.dhall")
}

// token walks the token sources in order and returns the first one set.
func (r *resolver) token() (token, source string, err error) {
	switch {
	case r.s.AuthTokenFileFlag != "":
		token, source, err = r.readSecretFile("auth token", "--auth-token-file", r.s.AuthTokenFileFlag)
	case r.s.ManifestAuthTokenFile != "":
		token, source, err = r.readSecretFile("auth token", "manifest authTokenFile", r.s.ManifestAuthTokenFile)
	default:
		if v, ok := r.env(envToken); ok {
			token, source = v, "$"+envToken
		} else if r.cfg != nil && r.cfg.AuthToken != nil && strings.TrimSpace(*r.cfg.AuthToken) != "" {
			// cachix counts authToken = "" as "no token".
			token, source = strings.TrimSpace(*r.cfg.AuthToken), "authToken in "+r.cfgPath
			r.checkConfigExposure()
		}
	}
	if err != nil || token == "" {
		return "", "", err
	}
	if err := checkToken(token); err != nil {
		return "", "", fmt.Errorf("using auth token from %s: %w", source, err)
	}
	return token, source, nil
}

// signingKey walks the signing-key sources in order and parses the first
// one set.
func (r *resolver) signingKey() (*signing.Key, string, error) {
	var text, source string
	var err error
	switch {
	case r.s.SigningKeyFileFlag != "":
		text, source, err = r.readSecretFile("signing key", "--signing-key-file", r.s.SigningKeyFileFlag)
	case r.s.ManifestSigningKeyFile != "":
		text, source, err = r.readSecretFile("signing key", "manifest signingKeyFile", r.s.ManifestSigningKeyFile)
	default:
		if v, ok := r.env(envKey); ok {
			text, source = v, "$"+envKey
		} else if r.cfg != nil && r.s.CacheName != "" {
			if k, ok := r.cfg.SecretKey(r.s.CacheName); ok {
				// An entry with an empty key fails below, as in cachix.
				text = k
				source = fmt.Sprintf("binaryCaches secretKey for %q in %s", r.s.CacheName, r.cfgPath)
				r.checkConfigExposure()
			}
		}
	}
	if err != nil || source == "" {
		return nil, "", err
	}
	name := r.s.SigningKeyName
	if name == "" && r.s.CacheName != "" {
		name = r.s.CacheName + ".cachix.org-1"
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

// env reads a variable, trimmed; set-but-empty counts as unset (see
// Resolve) and earns a warning.
func (r *resolver) env(name string) (string, bool) {
	v, ok := r.lookup(name)
	if !ok {
		return "", false
	}
	if v = strings.TrimSpace(v); v == "" {
		r.warnings = append(r.warnings, fmt.Sprintf("$%s is set but empty; ignoring it", name))
		return "", false
	}
	return v, true
}

// readSecretFile reads an explicitly named secret file: refused inside the
// store, required to exist and be non-empty, trimmed. what ("auth token")
// and origin ("--auth-token-file") only shape messages.
func (r *resolver) readSecretFile(what, origin, path string) (text, source string, err error) {
	source = origin + " " + path
	fail := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("reading %s from %s: "+format, append([]any{what, source}, args...)...)
	}
	if real, ok := store.Within(path, r.storeDir); ok {
		return fail("%w (%s), which every user can read: keep secrets outside the store and pass their runtime path", ErrSecretInStore, real)
	}
	f, err := os.Open(path)
	if err != nil {
		return fail("%w: %w", ErrUnreadable, fsutil.Cause(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail("%w: %w", ErrUnreadable, fsutil.Cause(err))
	}
	if fi.IsDir() {
		return fail("%w: it is a directory", ErrUnreadable)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return fail("%w: %w", ErrUnreadable, fsutil.Cause(err))
	}
	if len(data) > maxSecretSize {
		return fail("%w: larger than %d KiB, which is not a token or key file", ErrUnreadable, maxSecretSize>>10)
	}
	text = strings.TrimSpace(string(data))
	if text == "" {
		return fail("%w", ErrEmptySecret)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 != 0 {
		r.warnings = append(r.warnings, fmt.Sprintf("%s file %s is readable by every user (mode %04o); restrict it, e.g. chmod 600", what, path, fi.Mode().Perm()))
	}
	return text, source, nil
}

// loadConfig reads cachix.dhall for a Cachix cache. Missing or unreadable
// means empty, as in cachix; a syntax error is fatal.
func (r *resolver) loadConfig() error {
	if r.s.CacheName == "" {
		return nil
	}
	r.cfgPath = r.s.ConfigPath
	if r.cfgPath == "" {
		r.cfgPath = DefaultConfigPath(r.lookup)
	}
	if r.cfgPath == "" {
		return nil
	}
	if abs, err := filepath.Abs(r.cfgPath); err == nil {
		r.cfgPath = abs // as cachix does; also makes messages unambiguous
	}
	cfg, err := dhall.Load(r.cfgPath)
	var syntax *dhall.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	case err != nil:
		return nil
	}
	r.cfg = cfg
	return nil
}

// checkConfigExposure warns, once, when a secret is taken from a
// cachix.dhall that others can read: a home-manager-generated one is a
// symlink into the store, which is why this warns instead of refusing (cachix
// itself reads it the same way).
func (r *resolver) checkConfigExposure() {
	if r.cfgChecked {
		return
	}
	r.cfgChecked = true
	if real, ok := store.Within(r.cfgPath, r.storeDir); ok {
		r.warnings = append(r.warnings, fmt.Sprintf("%s is in the Nix store (%s), so every user can read the secrets in it; keep cachix.dhall outside the store", r.cfgPath, real))
		return
	}
	if fi, err := os.Stat(r.cfgPath); err == nil && fi.Mode().Perm()&0o004 != 0 {
		r.warnings = append(r.warnings, fmt.Sprintf("%s is readable by every user (mode %04o); restrict it, e.g. chmod 600", r.cfgPath, fi.Mode().Perm()))
	}
}

// checkToken rejects tokens that cannot be a bearer token: whitespace or
// control characters inside (a multi-line file), or an environment-file
// line such as CACHIX_AUTH_TOKEN=…, a common mix-up with systemd
// EnvironmentFile secrets.
func checkToken(token string) error {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: it contains whitespace or control characters; it must be the token alone", ErrBadToken)
		}
	}
	if strings.HasPrefix(token, envToken+"=") {
		return fmt.Errorf("%w: it looks like an environment file line (%s=…); it must be the token alone", ErrBadToken, envToken)
	}
	return nil
}

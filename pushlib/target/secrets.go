package target

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// Errors about secrets; each is bad input.
var (
	// ErrSecretInStore marks a secret file whose path (after cleaning and
	// resolving symlinks) lies inside the Nix store, which every user can read.
	ErrSecretInStore = fault.BadInput("secret file is inside the Nix store")
	// ErrUnreadable marks a secret file, named explicitly by a flag or the
	// manifest, that cannot be opened or read.
	ErrUnreadable = fault.BadInput("cannot read secret file")
	// ErrEmptySecret marks an explicitly named secret file that holds
	// nothing but whitespace.
	ErrEmptySecret = fault.BadInput("secret file is empty")
	// ErrBadToken marks an auth token that cannot be sent as an HTTP header
	// (whitespace or control characters inside, or a KEY=value line).
	ErrBadToken = fault.BadInput("invalid auth token")
	// ErrBadConfig marks a cachix.dhall that exists but cannot be parsed.
	ErrBadConfig = fault.BadInput("malformed cachix config")
)

const (
	envToken = "CACHIX_AUTH_TOKEN"
	// maxSecretSize bounds what is read from a secret file, so pointing a
	// flag at a large file or a device cannot eat memory.
	maxSecretSize = 64 << 10
)

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

// readSecretFile reads an explicitly named secret file: refused inside the
// store, required to exist and be non-empty, trimmed. what ("auth token")
// and origin ("--auth-token-file") only shape messages.
func (r *resolver) readSecretFile(what string, s secret) (string, error) {
	path, source := s.file, s.source
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("reading %s from %s: "+format, append([]any{what, source}, args...)...)
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
	text := strings.TrimSpace(string(data))
	if text == "" {
		return fail("%w", ErrEmptySecret)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 != 0 {
		r.warnings = append(r.warnings, fmt.Sprintf("%s file %s is readable by every user (mode %04o); restrict it, e.g. chmod 600", what, path, fi.Mode().Perm()))
	}
	return text, nil
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

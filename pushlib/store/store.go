package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotInStore marks an input that is not (or no longer) a valid path of
// the local Nix store.
var ErrNotInStore = errors.New("not a valid path in the Nix store")

// ErrNix marks a failure to run Nix itself (missing binary, daemon down, …).
var ErrNix = errors.New("running nix failed")

// InvalidPathError names the inputs that are not valid store paths.
type InvalidPathError struct {
	Paths  []string
	Reason string
}

// Error renders one line naming the first offending path.
func (e *InvalidPathError) Error() string {
	msg := fmt.Sprintf("%s is not a valid path in the Nix store", e.Paths[0])
	if e.Reason != "" {
		msg = fmt.Sprintf("%s is not a valid path in the Nix store (%s)", e.Paths[0], e.Reason)
	}
	if len(e.Paths) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(e.Paths)-1)
	}
	return msg
}

// Unwrap lets errors.Is(err, ErrNotInStore) match.
func (e *InvalidPathError) Unwrap() error { return ErrNotInStore }

// Store is the local Nix store as seen through the nix command line tools.
type Store struct {
	// Dir is the store directory, normally /nix/store.
	Dir string
	// BinDir holds the nix, nix-store binaries; "" means search PATH and the
	// usual profile locations.
	BinDir string
}

// New returns the local store. The store directory comes from NIX_STORE_DIR
// when set, else /nix/store; spawning Nix just to ask would cost time on
// every activation.
func New() *Store {
	dir := os.Getenv("NIX_STORE_DIR")
	if dir == "" {
		dir = DefaultStoreDir
	}
	return &Store{Dir: strings.TrimRight(dir, "/")}
}

// fallbackBinDirs are where nix lives when PATH does not have it, as in
// NixOS activation scripts and minimal systemd units.
var fallbackBinDirs = []string{
	"/run/current-system/sw/bin",
	"/nix/var/nix/profiles/default/bin",
}

// bin finds a Nix tool by name.
func (s *Store) bin(name string) (string, error) {
	if s.BinDir != "" {
		return filepath.Join(s.BinDir, name), nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs := append([]string(nil), fallbackBinDirs...)
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".nix-profile/bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found in PATH or the usual Nix profiles", ErrNix, name)
}

// run executes a Nix tool and returns its stdout; a failure carries the last
// line of its stderr.
func (s *Store) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	bin, err := s.bin(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return stdout.Bytes(), &nixError{cmd: name + " " + firstArg(args), stderr: lastLine(stderr.String()), err: err}
	}
	return stdout.Bytes(), nil
}

// nixError is a failed Nix invocation.
type nixError struct {
	cmd, stderr string
	err         error
}

func (e *nixError) Error() string {
	if e.stderr != "" {
		return fmt.Sprintf("%s: %s", e.cmd, e.stderr)
	}
	return fmt.Sprintf("%s: %v", e.cmd, e.err)
}

func (e *nixError) Unwrap() []error { return []error{ErrNix, e.err} }

// firstArg names the subcommand for messages without dumping every path.
func firstArg(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

// lastLine keeps the meaningful tail of Nix's stderr.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return strings.TrimPrefix(l, "error: ")
		}
	}
	return ""
}

// ToStorePath cuts an absolute path inside the store down to the store path
// itself (/nix/store/<hash>-<name>/bin/x → /nix/store/<hash>-<name>).
func (s *Store) ToStorePath(p string) (string, bool) {
	prefix := s.Dir + "/"
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	rest := p[len(prefix):]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	if len(rest) < 34 || rest[32] != '-' {
		return "", false
	}
	return prefix + rest, true
}

// Resolve turns user inputs into store paths the way `cachix push` does:
// symlinks such as ./result are followed and a path inside a store path
// becomes that store path. Validity in the Nix database is checked later,
// by Closure. The result keeps the inputs' order, without duplicates.
func (s *Store) Resolve(inputs []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var bad []string
	var reason string
	for _, in := range inputs {
		p := in
		if sp, ok := s.ToStorePath(filepath.Clean(p)); ok {
			// Already a store path: do not follow it, it may itself be a symlink.
			p = sp
		} else {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				bad = append(bad, in)
				reason = "no such file or directory"
				continue
			}
			if !filepath.IsAbs(real) {
				if real, err = filepath.Abs(real); err != nil {
					bad = append(bad, in)
					continue
				}
			}
			sp, ok := s.ToStorePath(real)
			if !ok {
				bad = append(bad, in)
				reason = "it resolves to " + real + ", outside " + s.Dir
				continue
			}
			p = sp
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(bad) > 0 {
		return nil, &InvalidPathError{Paths: bad, Reason: reason}
	}
	return out, nil
}

// nixArgs enables what the nix command needs without touching the user's config.
var nixArgs = []string{"--extra-experimental-features", "nix-command"}

// Closure returns the runtime closure of roots (references, transitively),
// with the metadata the Nix database holds for each path. Roots that are
// not valid store paths give an *InvalidPathError.
func (s *Store) Closure(ctx context.Context, roots []string) (map[string]*PathInfo, error) {
	return s.pathInfo(ctx, roots, true)
}

// ClosurePaths lists the runtime closure of roots without their metadata:
// cheaper than Closure, which matters when the cache turns out to have
// everything (the common case of an activation).
func (s *Store) ClosurePaths(ctx context.Context, roots []string) ([]string, error) {
	if len(roots) == 0 {
		return nil, nil
	}
	args := append([]string{"--query", "--requisites", "--"}, roots...)
	out, err := s.run(ctx, "nix-store", args...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		if invalid, verr := s.Invalid(ctx, roots); verr == nil && len(invalid) > 0 {
			return nil, &InvalidPathError{Paths: invalid}
		}
		return nil, fmt.Errorf("computing the closure: %w", err)
	}
	paths := strings.Fields(string(out))
	for _, p := range paths {
		if _, ok := s.ToStorePath(p); !ok {
			return nil, fmt.Errorf("%w: nix-store printed %q", ErrParsePathInfo, p)
		}
	}
	return paths, nil
}

// queryBatch bounds the paths per nix invocation, well under ARG_MAX.
const queryBatch = 2000

// Query returns the metadata of the given paths only (no closure).
func (s *Store) Query(ctx context.Context, paths []string) (map[string]*PathInfo, error) {
	out := make(map[string]*PathInfo, len(paths))
	for i := 0; i < len(paths); i += queryBatch {
		infos, err := s.pathInfo(ctx, paths[i:min(i+queryBatch, len(paths))], false)
		if err != nil {
			return nil, err
		}
		for k, v := range infos {
			out[k] = v
		}
	}
	return out, nil
}

// pathInfo runs `nix path-info --json` and checks every requested path came back.
func (s *Store) pathInfo(ctx context.Context, paths []string, recursive bool) (map[string]*PathInfo, error) {
	if len(paths) == 0 {
		return map[string]*PathInfo{}, nil
	}
	args := append(append([]string(nil), nixArgs...), "path-info", "--json")
	if recursive {
		args = append(args, "--recursive")
	}
	args = append(args, "--")
	args = append(args, paths...)
	out, err := s.run(ctx, "nix", args...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// Find out whether the failure is an invalid input, for a precise error.
		if invalid, verr := s.Invalid(ctx, paths); verr == nil && len(invalid) > 0 {
			return nil, &InvalidPathError{Paths: invalid}
		}
		return nil, fmt.Errorf("querying path info: %w", err)
	}
	infos, err := ParsePathInfoJSON(out, s.Dir)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, p := range paths {
		if _, ok := infos[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, &InvalidPathError{Paths: missing}
	}
	return infos, nil
}

// Invalid returns those of paths that are not valid in the Nix database.
func (s *Store) Invalid(ctx context.Context, paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	args := append([]string{"--check-validity", "--print-invalid", "--"}, paths...)
	out, err := s.run(ctx, "nix-store", args...)
	if err != nil {
		// nix-store exits non-zero when an argument is not in the store at all.
		var bad []string
		for _, p := range paths {
			if _, ok := s.ToStorePath(p); !ok {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			return bad, nil
		}
		return nil, fmt.Errorf("checking validity: %w", err)
	}
	var invalid []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			invalid = append(invalid, l)
		}
	}
	return invalid, nil
}

// TopoSort orders paths so that every path comes after the paths it refers
// to (self-references ignored). Paths outside the map are ignored as
// dependencies. Ties are broken by path, so the order is deterministic.
func TopoSort(infos map[string]*PathInfo) []string {
	keys := make([]string, 0, len(infos))
	for k := range infos {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	state := make(map[string]uint8, len(infos)) // 0 new, 1 visiting, 2 done
	out := make([]string, 0, len(infos))
	var visit func(string)
	visit = func(p string) {
		if state[p] != 0 {
			return // done, or a cycle (impossible in a valid store) — break it
		}
		state[p] = 1
		for _, r := range infos[p].References {
			if r != p {
				if _, ok := infos[r]; ok {
					visit(r)
				}
			}
		}
		state[p] = 2
		out = append(out, p)
	}
	for _, k := range keys {
		visit(k)
	}
	return out
}

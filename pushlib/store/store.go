package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/childenv"
)

// ErrNotInStore marks an input that is not (or no longer) a valid path of
// the local Nix store.
var ErrNotInStore = fault.BadInput("not a valid path in the Nix store")

// ErrNix marks a failure to run Nix itself (missing binary, daemon down, …).
var ErrNix = errors.New("running nix failed")

// InvalidPathError names the inputs that are not valid store paths.
type InvalidPathError struct {
	Paths  []string
	Reason string
}

// Error renders one line naming the first offending path.
func (e *InvalidPathError) Error() string {
	msg := fmt.Sprintf("%s is not a valid path in the Nix store", Quote(e.Paths[0]))
	if e.Reason != "" {
		msg = fmt.Sprintf("%s is not a valid path in the Nix store (%s)", Quote(e.Paths[0]), e.Reason)
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
	// Closures, if set, remembers the closures Nix computed (ClosurePaths
	// and ClosureInfos) and answers ClosurePaths from them when it can.
	Closures *ClosureCache

	// argBudget overrides the bytes of paths per command line (tests).
	argBudget int
	// wantsJSONFormat: this Nix answered path-info only with --json-format
	// (see runPathInfo).
	wantsJSONFormat atomic.Bool
}

// New returns the local store. The store directory comes from NIX_STORE_DIR
// when set, else /nix/store; spawning Nix just to ask would cost time on
// every activation.
func New() *Store {
	dir := os.Getenv("NIX_STORE_DIR")
	if dir == "" {
		dir = DefaultStoreDir
	}
	return &Store{Dir: strings.TrimRight(dir, "/"), Closures: &ClosureCache{Dir: DefaultClosureCacheDir()}}
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

// busyRetryDelays are the pauses before each new attempt of a query that
// failed because Nix found its database busy (1.5 s in all).
var busyRetryDelays = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

// run executes a Nix tool and returns its stdout; a failure carries the last
// line of its stderr. Every command run here only reads the store, so one
// that failed on a busy database (see Busy) is run again, a few times.
func (s *Store) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	bin, err := s.bin(name)
	if err != nil {
		return nil, err
	}
	stdout, stderr, err := RunRetryingBusy(ctx, busyRetryDelays, bin, args...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return stdout, &nixError{cmd: name + " " + firstArg(args), stderr: lastLine(stderr), err: err}
	}
	return stdout, nil
}

// RunRetryingBusy runs bin with args and returns its stdout and stderr;
// a run that failed on a busy database (Busy) is run again after each of
// delays in turn. The error is the last run's (or ctx's, when it ends
// during a pause).
func RunRetryingBusy(ctx context.Context, delays []time.Duration, bin string, args ...string) ([]byte, string, error) {
	for attempt := 0; ; attempt++ {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = childenv.Environ()
		var stdout, stderr bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil || ctx.Err() != nil || attempt >= len(delays) || !Busy(stderr.String()) {
			return stdout.Bytes(), stderr.String(), err
		}
		select {
		case <-time.After(delays[attempt]):
		case <-ctx.Done():
			return stdout.Bytes(), stderr.String(), ctx.Err()
		}
	}
}

// Busy reports whether Nix failed because its SQLite database was busy:
// several Nix processes opening one store without a daemon can fail so
// for a moment (NixOS/nix#7998, #15987), and the same command succeeds
// when run again. Only the words "SQLite" and "busy" are looked for, in
// any case, so that Nix's and Lix's wordings across versions all match; a
// message without them is a failure like any other.
func Busy(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "sqlite") && strings.Contains(s, "busy")
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

// StorePathOf cuts an absolute path inside the store down to the store
// path itself (/nix/store/<hash>-<name>/bin/x → /nix/store/<hash>-<name>)
// and parses it. A path outside the store is a *BadPathError too.
func (s *Store) StorePathOf(p string) (Path, error) {
	rest, ok := strings.CutPrefix(p, s.Dir+"/")
	if !ok {
		return Path{}, &BadPathError{p, "it is not in " + s.Dir}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return ParsePath(s.Dir, s.Dir+"/"+rest)
}

// Resolve turns user inputs into store paths the way `cachix push` does:
// symlinks such as ./result are followed and a path inside a store path
// becomes that store path. A store path whose hash or name Nix would reject
// is a *BadPathError. Validity in the Nix database is checked later, by
// Closure. The result keeps the inputs' order, without duplicates.
func (s *Store) Resolve(inputs []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var bad []string
	var reason string
	for _, in := range inputs {
		p, err := s.resolveOne(in)
		if err != nil {
			var ipe *InvalidPathError
			if !errors.As(err, &ipe) {
				return nil, err
			}
			bad = append(bad, in)
			reason = ipe.Reason
			continue
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

// resolveOne resolves one input to a well-formed store path.
func (s *Store) resolveOne(in string) (string, error) {
	clean := filepath.Clean(in)
	if strings.HasPrefix(clean, s.Dir+"/") {
		// Meant as a store path: do not follow it, it may itself be a symlink.
		sp, err := s.StorePathOf(clean)
		return sp.String(), err
	}
	real, err := filepath.EvalSymlinks(in)
	if err != nil {
		return "", &InvalidPathError{Paths: []string{in}, Reason: "no such file or directory"}
	}
	if !filepath.IsAbs(real) {
		if real, err = filepath.Abs(real); err != nil {
			return "", &InvalidPathError{Paths: []string{in}}
		}
	}
	switch {
	case real == s.Dir:
		return "", &InvalidPathError{Paths: []string{in}, Reason: "it is the store directory itself, not a path in it"}
	case !strings.HasPrefix(real, s.Dir+"/"):
		return "", &InvalidPathError{Paths: []string{in}, Reason: "it resolves to " + Quote(real) + ", outside " + s.Dir}
	}
	sp, err := s.StorePathOf(real)
	return sp.String(), err
}

// nixArgs enables what the nix command needs without touching the user's config.
var nixArgs = []string{"--extra-experimental-features", "nix-command"}

// ClosurePaths lists the runtime closure of roots (references,
// transitively) without their metadata, which is cheaper: it matters when
// the cache turns out to have everything (the common case of an
// activation). A closure in s.Closures needs no Nix process at all.
// Roots that are not valid store paths give an *InvalidPathError.
func (s *Store) ClosurePaths(ctx context.Context, roots []string) ([]string, error) {
	if paths, ok := s.Closures.Get(s.Dir, roots); ok {
		return paths, nil
	}
	var paths []string
	seen := map[string]bool{}
	err := s.batched(ctx, roots, func(batch []string) error {
		args := append([]string{"--query", "--requisites", "--"}, batch...)
		out, err := s.run(ctx, "nix-store", args...)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, syscall.E2BIG) {
				return err
			}
			if invalid, verr := s.Invalid(ctx, batch); verr == nil && len(invalid) > 0 {
				return &InvalidPathError{Paths: invalid}
			}
			return fmt.Errorf("computing the closure: %w", err)
		}
		for _, p := range strings.Fields(string(out)) {
			if _, err := ParsePath(s.Dir, p); err != nil {
				return fmt.Errorf("%w: nix-store printed %q", ErrParsePathInfo, p)
			}
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Closures.Put(roots, paths)
	return paths, nil
}

// Remembered returns the closure of roots as the closure cache holds it,
// without any Nix process; false when it holds none.
func (s *Store) Remembered(roots []string) ([]string, bool) {
	return s.Closures.Get(s.Dir, roots)
}

// OnDisk reports whether every path is in the store directory (one lstat
// each). It is no proof of validity in Nix's database (ClosurePaths and
// Query are), only that the paths were not deleted.
func (s *Store) OnDisk(paths []string) bool {
	for _, p := range paths {
		if !strings.HasPrefix(p, s.Dir+"/") {
			return false
		}
		if _, err := os.Lstat(p); err != nil {
			return false
		}
	}
	return true
}

// ClosureInfos returns the metadata of every path in the runtime closure
// of roots (`nix path-info --json --recursive`, in as few processes as the
// command line allows). Roots must not be derivations (see pathInfos).
// Roots that are not valid store paths give an *InvalidPathError.
func (s *Store) ClosureInfos(ctx context.Context, roots []string) (map[string]*PathInfo, error) {
	out := map[string]*PathInfo{}
	err := s.batched(ctx, roots, func(batch []string) error {
		infos, err := s.pathInfo(ctx, []string{"--recursive"}, batch)
		maps.Copy(out, infos)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.Closures.Put(roots, slices.Collect(maps.Keys(out)))
	return out, nil
}

// Query returns the metadata of the given paths only (no closure).
func (s *Store) Query(ctx context.Context, paths []string) (map[string]*PathInfo, error) {
	return s.pathInfos(ctx, paths)
}

// QueryWithin returns the metadata of paths, all of them in the runtime
// closure of roots. When paths would not fit on one command line and
// roots do (and none is a derivation), it asks Nix once for the whole
// closure of roots (`nix path-info --json --recursive`), so that the Nix
// processes a push starts do not grow with the paths it pushes; otherwise
// it is Query.
func (s *Store) QueryWithin(ctx context.Context, paths, roots []string) (map[string]*PathInfo, error) {
	if s.fits(paths) || !s.fits(roots) {
		return s.Query(ctx, paths)
	}
	for _, r := range roots {
		if strings.HasSuffix(r, ".drv") {
			return s.Query(ctx, paths)
		}
	}
	all, err := s.ClosureInfos(ctx, roots)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*PathInfo, len(paths))
	var rest []string
	for _, p := range paths {
		if pi, ok := all[p]; ok {
			out[p] = pi
		} else {
			rest = append(rest, p)
		}
	}
	if len(rest) > 0 {
		more, err := s.Query(ctx, rest)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, more)
	}
	return out, nil
}

// fits reports whether paths fit on one Nix command line (see batched).
func (s *Store) fits(paths []string) bool {
	budget := s.argBudget
	if budget <= 0 {
		budget = argBudget
	}
	size := 0
	for _, p := range paths {
		if size += len(p) + 9; size > budget {
			return false
		}
	}
	return true
}

// pathInfos runs `nix path-info --json` over paths in batches.
// Derivations go in their own invocations, with --derivation: without it,
// Nix 2.8 reads a .drv argument as the derivation's outputs (newer Nix
// reads it as itself either way), and with it, Nix 2.8 reads an output as
// its deriver.
func (s *Store) pathInfos(ctx context.Context, paths []string) (map[string]*PathInfo, error) {
	out := make(map[string]*PathInfo, len(paths))
	var drvs, others []string
	for _, p := range paths {
		if strings.HasSuffix(p, ".drv") {
			drvs = append(drvs, p)
		} else {
			others = append(others, p)
		}
	}
	for _, group := range []struct {
		paths []string
		flags []string
	}{{others, nil}, {drvs, []string{"--derivation"}}} {
		err := s.batched(ctx, group.paths, func(batch []string) error {
			infos, err := s.pathInfo(ctx, group.flags, batch)
			for k, v := range infos {
				out[k] = v
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pathInfo runs `nix path-info --json` and checks every requested path came back.
func (s *Store) pathInfo(ctx context.Context, flags, paths []string) (map[string]*PathInfo, error) {
	if len(paths) == 0 {
		return map[string]*PathInfo{}, nil
	}
	out, err := s.runPathInfo(ctx, flags, paths)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, syscall.E2BIG) {
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

// runPathInfo runs `nix path-info --json FLAGS -- PATHS`. Nix 2.33 and
// later warn that --json without --json-format is deprecated and "will
// become an error in a future release"; older Nix and Lix do not know the
// flag. So the query goes without it, as every Nix takes today, and when it
// fails it is asked once more with --json-format 1 (a shape
// ParsePathInfoJSON reads): if that answers, this Nix wants the flag, and
// every later query of this Store names it at once. An older Nix pays the
// second process only when a query fails anyway (an invalid path), and
// its first error is the one returned.
func (s *Store) runPathInfo(ctx context.Context, flags, paths []string) ([]byte, error) {
	args := func(format bool) []string {
		a := append(append([]string(nil), nixArgs...), "path-info", "--json")
		if format {
			a = append(a, "--json-format", "1")
		}
		a = append(append(a, flags...), "--")
		return append(a, paths...)
	}
	if s.wantsJSONFormat.Load() {
		return s.run(ctx, "nix", args(true)...)
	}
	out, err := s.run(ctx, "nix", args(false)...)
	if err == nil || ctx.Err() != nil || errors.Is(err, syscall.E2BIG) {
		return out, err
	}
	if out2, err2 := s.run(ctx, "nix", args(true)...); err2 == nil {
		s.wantsJSONFormat.Store(true)
		return out2, nil
	}
	return out, err
}

// Invalid returns those of paths that are not valid in the Nix database.
func (s *Store) Invalid(ctx context.Context, paths []string) ([]string, error) {
	var invalid []string
	err := s.batched(ctx, paths, func(batch []string) error {
		args := append([]string{"--check-validity", "--print-invalid", "--"}, batch...)
		out, err := s.run(ctx, "nix-store", args...)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, syscall.E2BIG) {
				return err
			}
			// nix-store exits non-zero when an argument is not in the store at all.
			var bad []string
			for _, p := range batch {
				if _, err := s.StorePathOf(p); err != nil {
					bad = append(bad, p)
				}
			}
			if len(bad) > 0 {
				invalid = append(invalid, bad...)
				return nil
			}
			return fmt.Errorf("checking validity: %w", err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				invalid = append(invalid, l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return invalid, nil
}

// argBudget bounds the bytes of store paths put on one Nix command line.
// Linux allows a quarter of the stack limit for arguments and environment
// together (2 MiB with the usual 8 MiB stack, at least 128 KiB); half a MiB
// leaves room for a large environment, and a command line that is still
// too long is split again (see batched).
const argBudget = 512 << 10

// batched calls run on consecutive batches of paths, each small enough for
// one command line: 100,000 roots take a dozen Nix processes instead of one
// that the kernel refuses ("argument list too long"). A batch refused with
// E2BIG anyway (a small stack limit, a huge environment) is halved.
func (s *Store) batched(ctx context.Context, paths []string, run func([]string) error) error {
	budget := s.argBudget
	if budget <= 0 {
		budget = argBudget
	}
	for len(paths) > 0 {
		n, size := 0, 0
		for n < len(paths) && (n == 0 || size+len(paths[n])+9 <= budget) {
			size += len(paths[n]) + 9 // the string, its NUL and its argv pointer
			n++
		}
		if err := s.runSplitting(paths[:n], run); err != nil {
			return err
		}
		paths = paths[n:]
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// runSplitting runs one batch, halving it for as long as the kernel finds
// the command line too long.
func (s *Store) runSplitting(batch []string, run func([]string) error) error {
	err := run(batch)
	if !errors.Is(err, syscall.E2BIG) || len(batch) < 2 {
		return err
	}
	half := len(batch) / 2
	if err := s.runSplitting(batch[:half], run); err != nil {
		return err
	}
	return s.runSplitting(batch[half:], run)
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

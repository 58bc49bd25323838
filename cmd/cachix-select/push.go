package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// cacheFlags select the target cache and its secrets (shared by push and activate).
func cacheFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cache", Usage: "push to the Cachix cache `NAME` (instead of the manifest's cache); or give it as the first argument, as cachix does"},
		hostFlag(),
		&cli.StringFlag{Name: "to", Usage: "push to the plain Nix binary cache at `URL` (file:///dir, s3://bucket?region=…&endpoint=…) instead"},
		&cli.StringFlag{Name: "auth-token-file", Usage: "read the Cachix auth token from `FILE` (default: manifest, $CACHIX_AUTH_TOKEN, cachix.dhall)"},
		&cli.StringFlag{Name: "signing-key-file", Usage: "read the signing key from `FILE` (Nix name:base64 or Cachix bare base64)"},
		&cli.StringFlag{Name: "signing-key-name", Usage: "key `NAME` for a bare (Cachix-form) signing key when pushing to a plain binary cache"},
		s3CredentialsFlag(),
		configFlag(),
	}
}

// hostFlag is the Cachix API host; --hostname is cachix's older name for it.
func hostFlag() cli.Flag {
	return &cli.StringFlag{Name: "host", Aliases: []string{"hostname"}, Usage: "Cachix API host `URL` (default https://cachix.org, or hostname in cachix.dhall)"}
}

// configFlag names cachix.dhall, as cachix's -c/--config does.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "Cachix config `FILE`, which must exist (default $XDG_CONFIG_HOME/cachix/cachix.dhall, else ~/.config/cachix/cachix.dhall, read when present)"}
}

// s3CredentialsFlag names the AWS credentials file for s3:// caches.
func s3CredentialsFlag() cli.Flag {
	return &cli.StringFlag{Name: "s3-credentials-file", Usage: "s3:// caches: read the keys from the AWS credentials `FILE` (INI, the URL's profile or [default]; default: $AWS_ACCESS_KEY_ID, ~/.aws/credentials)"}
}

// pushTuningFlags are the knobs of the upload itself.
func pushTuningFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "`N` paths uploaded at once; at most one per core compresses at a time, and one of 16 MiB or more uses the idle cores too (default: manifest, else 8)"},
		&cli.StringFlag{Name: "compression-method", Aliases: []string{"m"}, Usage: "`METHOD`: zstd or xz (default: manifest, else the cache's preference, else zstd)"},
		&cli.IntFlag{Name: "compression-level", Aliases: []string{"l"}, Usage: "compression `LEVEL`, 0-16 for zstd, 0-9 for xz (default 2)"},
		&cli.BoolFlag{Name: "omit-deriver", Usage: "do not publish which derivation built each path"},
		&cli.IntFlag{Name: "chunk-size", Aliases: []string{"s"}, Usage: "Cachix: upload NARs in parts of `BYTES`, 5 MiB to 5 GiB (default: manifest, else 16777216, 16 MiB; cachix: 32 MiB)"},
		&cli.IntFlag{Name: "num-concurrent-chunks", Aliases: []string{"n"}, Usage: "Cachix: upload `N` parts of a NAR at once, 1-64 (default: manifest, else 4); the part buffers of all uploads together hold at most 64 MiB, or (N+1) × the chunk size when -s or -n is set and that is more"},
	}
}

// defaultRetryFor is how long failed HTTP requests are retried, as cachix.
const defaultRetryFor = 90 * time.Second

// networkFlags bound the HTTP requests to a Cachix cache. Their
// environment variables also reach the background pushes the hooks start.
func networkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "connect-timeout", Value: cachix.DefaultConnectTimeout, EnvVars: []string{"CACHIX_SELECT_CONNECT_TIMEOUT"},
			Usage: "give up connecting to a Cachix or S3 host (TCP, then TLS) after `DURATION`; the request is retried"},
		&cli.DurationFlag{Name: "stall-timeout", Value: cachix.DefaultStallTimeout, EnvVars: []string{"CACHIX_SELECT_STALL_TIMEOUT"},
			Usage: "fail an HTTP request that, once connected, moves no byte, sent or received, for `DURATION`; it is retried (a slow transfer that moves is never cut)"},
		&cli.DurationFlag{Name: "retry-for", Value: defaultRetryFor, EnvVars: []string{"CACHIX_SELECT_RETRY_FOR"},
			Usage: "retry failed requests (connection errors, timeouts, HTTP 429 and 5xx) for up to `DURATION` after the first failure; 0: do not retry"},
		&cli.BoolFlag{Name: "fail-fast", EnvVars: []string{"CACHIX_SELECT_FAIL_FAST"},
			Usage: "give up at once on a Cachix or S3 host that cannot be reached at all (unknown name, connection refused, no route) before it answered once"},
	}
}

// outputFlags control what is printed.
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON lines (events, then the result) on stdout"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only errors"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every path and debug logs"},
	}
}

// pushCommand is `cachix-select push`.
func pushCommand() *cli.Command {
	flags := append(cacheFlags(), pushTuningFlags()...)
	flags = append(flags, &cli.BoolFlag{Name: "dry-run", Usage: "report what would be pushed, with NAR sizes, and what the selection leaves out; upload nothing (a public Cachix cache needs no token for it)"})
	flags = append(flags, selectionFlags()...)
	flags = append(flags, networkFlags()...)
	flags = append(flags, outputFlags()...)
	flags = append(flags, omciFlags()...)
	return &cli.Command{
		Name:      "push",
		Usage:     "push manifests, or store paths, with their runtime (or build) closures",
		ArgsUsage: "CACHE [PATH...] | --cache NAME [PATH...] | --to URL [PATH...] | MANIFEST.json... | CACHE --om-results FILE",
		Description: "Each path is pushed with its runtime closure (--closure build: what building it needs);\n" +
			"paths the cache has are skipped, and so are those the --exclude-* rules and the upstream\n" +
			"filter leave out (--exclude-mode says what becomes of the paths that need them).\n\n" +
			"The first argument is a Cachix cache name, as in `cachix push CACHE PATH...`, when it has no \"/\"\n" +
			"and does not end in .json (a cache name never has a \"/\"); --cache NAME or --to URL name the cache\n" +
			"instead. The other arguments are store paths (./result symlinks and paths inside store paths are\n" +
			"resolved); with none, they are read from stdin (empty stdin: nothing to push, unless the cache's\n" +
			"name is a file or directory here: then it is an error). A path that does not exist or is not\n" +
			"valid in the local store is skipped with a warning, as cachix does.\n" +
			"Without a cache, the arguments are manifests (files ending in .json), each pushed to its own\n" +
			"cache. After a cache, a .json file outside the Nix store is a manifest pushed to that cache, and\n" +
			"one in the store (such as om ci run's result) is a store path. Flags may come after arguments.\n" +
			"With --om-results, the outputs of `om ci run --results=om.json` are pushed and each byName\n" +
			"entry is pinned as <prefix>-<system>-<name> once its closure is in the cache; outPaths and,\n" +
			"with `om ci run --include-all-dependencies`, allDeps are pushed too (those valid here).\n\n" + exitCodesHelp,
		Flags:        flags,
		OnUsageError: onUsageError,
		Action:       pushAction,
	}
}

// pushAction parses the inputs, builds one job per cache and runs them.
func pushAction(c *cli.Context) error {
	st := store.New()
	args, named, err := takeCacheArg(c)
	if err != nil {
		return err
	}
	if err := checkOmciFlags(c); err != nil {
		return err
	}
	var req pushlib.Request
	if c.String("om-results") != "" {
		if len(args) > 0 {
			return usageErrorf("--om-results takes no other arguments")
		}
		if c.String("cache") == "" && c.String("to") == "" {
			return usageErrorf("--om-results needs the cache: push CACHE --om-results FILE (or --to URL)")
		}
		roots, err := omciRoots(c, st)
		if err != nil {
			return err
		}
		if req, err = requestFromFlags(c, nil, nil); err != nil {
			return err
		}
		req.Pinned = roots
	} else {
		manifests, paths, err := readInputs(c, st, args)
		if err != nil {
			return err
		}
		if len(manifests) == 0 && len(paths) == 0 {
			if named != "" && len(args) == 0 {
				if fi, err := os.Stat(named); err == nil {
					// push m.manifest </dev/null: a file read as the cache's name.
					kind := "a file"
					if fi.IsDir() {
						kind = "a directory"
					}
					return usageErrorf("%q was read as the Cachix cache's name (push CACHE PATH...) and stdin had no store paths, "+
						"but it is %s here: a manifest's name ends in .json; give a path as ./%s, and the cache with --cache NAME or --to URL", named, kind, named)
				}
			}
			if !c.Bool("quiet") {
				fmt.Fprintf(c.App.ErrWriter, "Nothing to push to %s: no store paths on stdin.\n", cacheLabel(c))
			}
			return nil
		}
		if req, err = requestFromFlags(c, manifests, paths); err != nil {
			return err
		}
		req.SkipInvalid = len(paths) > 0
	}
	jobs, err := pushlib.BuildJobs(req, st)
	if err != nil {
		return err
	}
	return runJobs(c, jobs)
}

// takeCacheArg reads cachix's form, `push CACHE [PATH...]`: a first
// argument with no "/" that does not end in .json names the Cachix cache
// (a cache name never has a "/"), unless --cache or --to does. It returns
// the other arguments, and the first when it was taken as the cache.
func takeCacheArg(c *cli.Context) ([]string, string, error) {
	args := c.Args().Slice()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 || c.String("cache") != "" || c.String("to") != "" {
		return args, "", nil
	}
	first := args[0]
	if strings.Contains(first, "/") || strings.HasSuffix(first, ".json") || first == "-" {
		return args, "", nil
	}
	if err := target.CheckCacheName(first); err != nil {
		return nil, "", usageErrorf("%v: the first argument names the Cachix cache, as in cachix push CACHE PATH...; "+
			"give a path as ./%s, or the cache with --cache NAME or --to URL", err, first)
	}
	if err := c.Set("cache", first); err != nil {
		return nil, "", err
	}
	return args[1:], first, nil
}

// cacheLabel names the cache of the command line for a message: "Cachix
// cache NAME" or the --to URL.
func cacheLabel(c *cli.Context) string {
	if n := c.String("cache"); n != "" {
		return "Cachix cache " + n
	}
	if u := c.String("to"); u != "" {
		return u
	}
	return "the cache"
}

// requestFromFlags collects the command line into a pushlib.Request.
func requestFromFlags(c *cli.Context, manifests []*manifest.Manifest, paths []string) (pushlib.Request, error) {
	flags, err := flagLayer(c)
	if err != nil {
		return pushlib.Request{}, err
	}
	sel, closure, err := selectionFromFlags(c)
	if err != nil {
		return pushlib.Request{}, err
	}
	return pushlib.Request{Manifests: manifests, Paths: paths, Flags: flags, Resolve: resolveOptions(c),
		Backend: backendOptions(c), DryRun: c.Bool("dry-run"), Select: sel, Closure: closure}, nil
}

// flagLayer is the command line's layer of the target: the highest one.
// Commands without some of these flags leave those fields empty.
func flagLayer(c *cli.Context) (target.Layer, error) {
	l := target.Layer{
		Origin: target.CommandLine,
		Cache:  c.String("cache"), URL: c.String("to"), Host: c.String("host"),
		AuthTokenFile: c.String("auth-token-file"), SigningKeyFile: c.String("signing-key-file"),
		S3CredentialsFile: c.String("s3-credentials-file"),
		Compression:       c.String("compression-method"),
		Jobs:              c.Int("jobs"),
		OmitDeriver:       c.Bool("omit-deriver"),
	}
	if c.IsSet("compression-level") {
		n := c.Int("compression-level")
		l.CompressionLevel = &n
	}
	if c.IsSet("jobs") {
		if err := target.CheckJobs(l.Jobs); err != nil {
			return l, usageErrorf("--jobs %v", err)
		}
	}
	if c.IsSet("chunk-size") {
		if l.ChunkSize = c.Int("chunk-size"); target.CheckChunkSize(l.ChunkSize) != nil {
			return l, usageErrorf("--chunk-size %v", target.CheckChunkSize(l.ChunkSize))
		}
	}
	if c.IsSet("num-concurrent-chunks") {
		if l.ConcurrentChunks = c.Int("num-concurrent-chunks"); target.CheckConcurrentChunks(l.ConcurrentChunks) != nil {
			return l, usageErrorf("--num-concurrent-chunks %v", target.CheckConcurrentChunks(l.ConcurrentChunks))
		}
	}
	if l.Cache != "" && l.URL != "" {
		return l, usageErrorf("give either --cache or --to, not both")
	}
	return l, nil
}

// resolveOptions say where the rest of a target is found.
func resolveOptions(c *cli.Context) target.Options {
	return target.Options{SigningKeyName: c.String("signing-key-name"), ConfigPath: c.String("config"),
		ConfigRequired: c.String("config") != ""}
}

// backendOptions are the backend settings every command shares; commands
// without the network flags get their defaults.
func backendOptions(c *cli.Context) backend.Options {
	retryFor := c.Duration("retry-for")
	if retryFor <= 0 && c.IsSet("retry-for") {
		retryFor = -1 // 0 means no retries, not the default
	}
	return backend.Options{
		Version: version,
		Logger:  logger(c),
		Network: backend.Network{ConnectTimeout: c.Duration("connect-timeout"), StallTimeout: c.Duration("stall-timeout"),
			RetryFor: retryFor, FailFast: c.Bool("fail-fast")},
	}
}

// logger is silent unless --verbose, then debug logs on stderr.
func logger(c *cli.Context) *zerolog.Logger {
	l := zerolog.Nop()
	if c.Bool("verbose") {
		l = zerolog.New(zerolog.ConsoleWriter{Out: c.App.ErrWriter, NoColor: true}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	return &l
}

// readInputs sorts the arguments into manifests and store paths; with no
// arguments and a non-terminal stdin, store paths are read from stdin
// (none there: neither manifests nor paths, and no error). Without a cache
// named on the command line every argument must be a manifest; with one, a
// .json file outside the Nix store is a manifest and anything else a store
// path (om ci run's result is a .json file in the store).
func readInputs(c *cli.Context, st *store.Store, args []string) ([]*manifest.Manifest, []string, error) {
	cache := c.String("cache") != "" || c.String("to") != ""
	var manifests []*manifest.Manifest
	var paths []string
	for _, a := range args {
		if cache && !manifest.IsManifestArg(a, st.Dir) || !cache && !strings.HasSuffix(a, ".json") {
			paths = append(paths, a)
			continue
		}
		m, err := manifest.ParseFile(a, st.Dir)
		if err != nil {
			return nil, nil, err
		}
		warnUnknown(c, m)
		manifests = append(manifests, m)
	}
	switch {
	case !cache && len(paths) > 0 && strings.Contains(paths[0], "://"):
		return nil, nil, usageErrorf("%s is a cache URL: give it with --to (push --to %s PATH...); "+
			"a first argument without \"/\" is a Cachix cache's name", store.Quote(paths[0]), store.Quote(paths[0]))
	case !cache && len(paths) > 1 && !strings.Contains(paths[len(paths)-1], "/"):
		last := paths[len(paths)-1]
		return nil, nil, usageErrorf("push takes the cache first: push %s PATH... (%s, a name without \"/\", is given last)",
			store.Quote(last), store.Quote(last))
	case !cache && len(paths) > 0:
		return nil, nil, usageErrorf("%s is not a manifest (.json), and no cache is given: push CACHE PATH..., "+
			"or --cache NAME / --to URL with store paths", store.Quote(paths[0]))
	case len(manifests) > 0 && len(paths) > 0:
		return nil, nil, usageErrorf("give either manifests or store paths, not both (%s is not a .json manifest outside the Nix store)", store.Quote(paths[0]))
	}
	if len(args) == 0 {
		if !cache {
			return nil, nil, usageErrorf("nothing to push: give CACHE and store paths (arguments or stdin), MANIFEST.json files, or --cache NAME / --to URL")
		}
		if f, ok := c.App.Reader.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			return nil, nil, usageErrorf("give store paths as arguments or on stdin")
		}
		var err error
		if paths, err = store.ReadPaths(c.App.Reader); err != nil {
			return nil, nil, err
		}
	}
	return manifests, paths, nil
}

// Command cachix-test-server runs the strict Cachix test server
// (tests/cachixserver) as a process, for benchmarks and shell-driven tests.
//
// It prints one JSON line on stdout once listening:
//
//	{"url": API host, "binaryCacheURL": first cache's Nix URL, "publicKey": its trusted key,
//	 "controlURL": …, "caches": {name: {"binaryCacheURL": …, "publicKey": …}}}
//
// and serves until SIGINT or SIGTERM. Tokens are read from files, never argv.
// On controlURL (a separate loopback listener, so it can never be mistaken
// for part of the Cachix API), GET /stats returns the server's counters as
// JSON and POST /reset clears them: the benchmark counts requests this way.
// With --defer-verification, POST /verify runs the verification of every
// NAR completed since the last call and returns {"checked": N, "failures":
// [message…]}: the benchmark measures the client's CPU during the push and
// then checks what it sent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// options are the parsed command-line flags.
type options struct {
	listen        string
	caches        []string
	tokenFile     string
	readTokenFile string
	public        bool
	selfSignedKey string
	preferXZ      bool
	faultRate     float64
	faultKinds    string
	faultBinCache bool
	retryAfter    int
	seed          int64
	minPartSize   int64
	dataDir       string
	verbose       bool
	// deferVerification: Config.DeferVerification.
	deferVerification bool
}

// main runs the server and maps failure to exit status 1 (2 for bad usage).
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cachix-test-server:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a command-line mistake.
var errUsage = errors.New("usage")

// run parses args, starts the server, prints its URLs and waits for ctx.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := buildConfig(opts, stderr)
	if err != nil {
		return err
	}
	srv, err := cachixserver.Start(cfg)
	if err != nil {
		return fmt.Errorf("starting server: %w", err)
	}
	defer srv.Close()

	type cacheOut struct {
		BinaryCacheURL string `json:"binaryCacheURL"`
		PublicKey      string `json:"publicKey"`
	}
	control, err := startControl(srv)
	if err != nil {
		return err
	}
	defer control.Close()
	out := struct {
		URL            string              `json:"url"`
		BinaryCacheURL string              `json:"binaryCacheURL"`
		PublicKey      string              `json:"publicKey"`
		ControlURL     string              `json:"controlURL"`
		Caches         map[string]cacheOut `json:"caches"`
	}{URL: srv.URL(), ControlURL: "http://" + control.Addr().String(), Caches: map[string]cacheOut{}}
	for i, name := range opts.caches {
		co := cacheOut{BinaryCacheURL: srv.BinaryCacheURL(name), PublicKey: srv.PublicKey(name)}
		out.Caches[name] = co
		if i == 0 {
			out.BinaryCacheURL, out.PublicKey = co.BinaryCacheURL, co.PublicKey
		}
	}
	line, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encoding startup line: %w", err)
	}
	if _, err := fmt.Fprintln(stdout, string(line)); err != nil {
		return fmt.Errorf("writing startup line: %w", err)
	}
	<-ctx.Done()
	return nil
}

// startControl serves the counters on a separate loopback listener.
func startControl(srv *cachixserver.Server) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the control endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(srv.Stats())
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		srv.ResetStats()
	})
	mux.HandleFunc("POST /verify", func(w http.ResponseWriter, r *http.Request) {
		checked, failures := srv.VerifyDeferred()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Checked  int      `json:"checked"`
			Failures []string `json:"failures"`
		}{checked, append([]string{}, failures...)})
	})
	go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
	return ln, nil
}

// parseFlags reads the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cachix-test-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to listen on")
	fs.Func("cache", "cache name (repeatable; default \"test\")", func(v string) error {
		o.caches = append(o.caches, v)
		return nil
	})
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the write token for every cache")
	fs.StringVar(&o.readTokenFile, "read-token-file", "", "file holding a read-only token for every cache")
	fs.BoolVar(&o.public, "public", false, "make the caches public (reads without a token)")
	fs.StringVar(&o.selfSignedKey, "self-signed-public-key", "", "make the caches self-signed with this bare base64 ed25519 public key")
	fs.BoolVar(&o.preferXZ, "prefer-xz", false, "advertise XZ instead of ZSTD as preferred compression")
	fs.Float64Var(&o.faultRate, "fault-rate", 0, "probability 0..1 of injecting a fault into an API/storage request")
	fs.StringVar(&o.faultKinds, "fault-kinds", "", "comma-separated faults to inject: 429,500,502,503,drop (default all)")
	fs.BoolVar(&o.faultBinCache, "fault-binary-cache", false, "also inject faults into the binary-cache view Nix reads")
	fs.IntVar(&o.retryAfter, "retry-after", 1, "Retry-After seconds sent with an injected 429 (negative: none)")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the fault sequence")
	fs.Int64Var(&o.minPartSize, "min-part-size", 0, "minimum size of all parts but the last (0: 5 MiB, negative: no check)")
	fs.StringVar(&o.dataDir, "data-dir", "", "keep uploaded data in files under this directory instead of memory")
	fs.BoolVar(&o.deferVerification, "defer-verification", false,
		"publish completed NARs before verifying their data; POST /verify on the control URL verifies them (benchmarks only)")
	fs.BoolVar(&o.verbose, "verbose", false, "log every request to stderr")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if len(o.caches) == 0 {
		o.caches = []string{"test"}
	}
	return o, nil
}

// buildConfig turns options into a server configuration, reading token files.
func buildConfig(o options, stderr io.Writer) (cachixserver.Config, error) {
	cfg := cachixserver.Config{
		Listen:            o.listen,
		FaultRate:         o.faultRate,
		FaultBinaryCache:  o.faultBinCache,
		RetryAfter:        o.retryAfter,
		Seed:              o.seed,
		MinPartSize:       o.minPartSize,
		DataDir:           o.dataDir,
		DeferVerification: o.deferVerification,
	}
	if o.verbose {
		cfg.Log = stderr
	}
	if o.faultKinds != "" {
		for _, k := range strings.Split(o.faultKinds, ",") {
			kind, err := cachixserver.ParseFaultKind(strings.TrimSpace(k))
			if err != nil {
				return cfg, fmt.Errorf("%w: --fault-kinds: %w", errUsage, err)
			}
			cfg.FaultKinds = append(cfg.FaultKinds, kind)
		}
	}
	var write, read []string
	if o.tokenFile != "" {
		t, err := readToken(o.tokenFile)
		if err != nil {
			return cfg, err
		}
		write = []string{t}
	}
	if o.readTokenFile != "" {
		t, err := readToken(o.readTokenFile)
		if err != nil {
			return cfg, err
		}
		read = []string{t}
	}
	compression := "ZSTD"
	if o.preferXZ {
		compression = "XZ"
	}
	for _, name := range o.caches {
		cfg.Caches = append(cfg.Caches, cachixserver.CacheConfig{
			Name:                 name,
			Public:               o.public,
			WriteTokens:          write,
			ReadTokens:           read,
			SelfSigned:           o.selfSignedKey != "",
			PublicKey:            o.selfSignedKey,
			PreferredCompression: compression,
		})
	}
	return cfg, nil
}

// readToken reads a token file, trimming surrounding whitespace.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("reading token file %s: it is empty", path)
	}
	return t, nil
}

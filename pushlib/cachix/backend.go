// Package cachix is the Cachix backend: it pushes NARs and narinfos to a
// Cachix binary cache exactly as `cachix push` does, and creates and lists
// pins. The wire protocol is described in docs/cachix-protocol.md; section
// numbers in comments (§4.8, …) refer to it.
//
// Every HTTP call goes through go-retryablehttp under cachix's own retry
// policy (§5.9a): 429, 5xx and connection failures are retried with
// full-jitter exponential backoff and Retry-After hints; 400/401/403/404
// and cancellation are final. Request bodies are always rebuilt from bytes,
// never from a one-shot stream. Unlike cachix, every attempt is bounded
// (Timeouts): connecting, and any stretch without progress, but not the
// total time of a transfer that moves.
//
// The auth token and the signing key are inputs (see package target for
// where they come from). Neither ever appears in an error or a log line.
package cachix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/memlimit"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Part sizing (target's: the limits and the parts in flight are `cachix
// push`'s, §4.8; the default part is half its 32 MiB, so that one large
// NAR still has 4 parts in flight within the memory budget).
const (
	DefaultChunkSize        = target.DefaultChunkSize
	MinChunkSize            = target.MinChunkSize
	MaxChunkSize            = target.MaxChunkSize
	DefaultConcurrentChunks = target.DefaultConcurrentChunks
	// DefaultBufferBudget bounds the bytes of all part buffers held at
	// once, across every upload: 4 parts of the default size. A NAR
	// smaller than a part gets a buffer of its own size. A chunk size or
	// concurrency set by the user raises it to what one NAR needs.
	DefaultBufferBudget = 64 << 20
)

// budgetUnit is the granularity of the buffer budget.
const budgetUnit = 1 << 20

// missingBatch is the most hashes one bulk narinfo query carries (§4.3).
const missingBatch = 32768

// Options configure a Cachix backend.
type Options struct {
	// Name is the cache name (required).
	Name string
	// Host is the Cachix host (required; target.Resolve gives the default,
	// https://cachix.org). "/api/v1" is appended.
	Host string
	// Token is the auth token, or "" for none.
	Token string
	// TokenSource says where the token came from ("$CACHIX_AUTH_TOKEN",
	// "/run/secrets/cachix"), for error messages. Never the token itself.
	TokenSource string
	// SigningKey signs narinfos for self-signed caches; nil for managed caches.
	SigningKey *signing.Key
	// OmitDeriver sends "unknown-deriver" instead of the deriver's name.
	OmitDeriver bool
	// ChunkSize is the multipart part size: default 16 MiB, raised to at
	// least 5 MiB and lowered to at most 5 GiB.
	ChunkSize int
	// ConcurrentChunks is how many parts of one NAR upload at once (default 4).
	ConcurrentChunks int
	// BufferBudget bounds the bytes of part buffers held at once by all
	// uploads together (default DefaultBufferBudget, at least one part).
	BufferBudget int
	// Logger receives debug logs of HTTP activity; nil is silent.
	Logger *zerolog.Logger
	// Version goes into the User-Agent ("cachix-select/<version>").
	Version string
	// HTTPClient replaces the default HTTP client (tests). Its transport
	// is wrapped to apply Timeouts.Stall; Timeouts.Connect is then its own.
	HTTPClient *http.Client
	// Retry tunes the HTTP retry policy; zero fields take cachix's values.
	Retry RetryPolicy
	// Timeouts bound each HTTP attempt; zero fields take the defaults.
	Timeouts Timeouts
	// FailFast gives up at once on a host that cannot be reached at all
	// (its name does not resolve, connecting is refused or has no route)
	// as long as it has not answered once, instead of retrying for the
	// whole budget: the error matches backend.ErrUnreachable. For the
	// hooks, which queue such a push for later rather than wait.
	FailFast bool
	// ReadOnly is a dry run: it only reads, so a public cache needs
	// neither a token nor a signing key.
	ReadOnly bool
	// ConfigName names the cachix.dhall consulted, for messages (""
	// = "~/.config/cachix/cachix.dhall").
	ConfigName string
}

// Backend pushes to one Cachix cache. It implements backend.Backend,
// backend.Pinner, backend.PinLister and backend.Substituter and is safe for
// concurrent use.
type Backend struct {
	name        string
	host        string
	tokenSource string
	readOnly    bool
	configName  string
	key         *signing.Key
	omitDeriver bool
	chunkSize   int
	concurrency int
	c           *apiClient

	// free holds part buffers of chunkSize bytes for reuse across uploads:
	// a free list the garbage collector never empties (a sync.Pool's
	// buffers, dropped and allocated again, left the heap twice the
	// budget), as many as the budget holds.
	free chan *[]byte
	// budget holds a token per budgetUnit of part buffer in use; budgetMu
	// lets one getBuffer at a time collect its tokens, so that two never
	// wait for each other's.
	budget   chan struct{}
	budgetMu sync.Mutex
	// bufInUse and bufPeak count part buffers held at once (for tests of
	// the memory bound).
	bufInUse, bufPeak atomic.Int64
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Pinner      = (*Backend)(nil)
	_ backend.PinLister   = (*Backend)(nil)
	_ backend.Substituter = (*Backend)(nil)
)

// New builds a Cachix backend. It does no I/O; Open checks the cache.
func New(opts Options) (*Backend, error) {
	name := strings.TrimSpace(opts.Name)
	if name == "" || strings.ContainsAny(name, "/?#") {
		return nil, fmt.Errorf("invalid Cachix cache name %q", opts.Name)
	}
	host := strings.TrimRight(strings.TrimSpace(opts.Host), "/")
	if err := target.CheckHost(host); err != nil {
		return nil, err
	}
	u, _ := url.Parse(host)
	u.Path = strings.TrimRight(u.Path, "/") + "/api/v1"
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""

	logger := opts.Logger
	if logger == nil {
		nop := zerolog.Nop()
		logger = &nop
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	timeouts := opts.Timeouts.withDefaults()
	var base http.RoundTripper = newTransport(timeouts)
	hc := &http.Client{}
	if opts.HTTPClient != nil {
		*hc = *opts.HTTPClient
		base = hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
	}
	hc.Transport = &stallGuard{base: base, stall: timeouts.Stall, connect: timeouts.Connect}
	hc.CheckRedirect = keepTokenAtHome
	chunk := opts.ChunkSize
	switch {
	case chunk <= 0:
		chunk = DefaultChunkSize
	case chunk < MinChunkSize:
		chunk = MinChunkSize
	case chunk > MaxChunkSize:
		chunk = MaxChunkSize
	}
	conc := opts.ConcurrentChunks
	if conc <= 0 {
		conc = DefaultConcurrentChunks
	}
	budget := opts.BufferBudget
	if budget <= 0 {
		budget = DefaultBufferBudget
		if opts.ChunkSize > 0 || opts.ConcurrentChunks > 0 {
			budget = max(budget, (conc+1)*chunk)
		}
	}
	budget = max(budget, chunk)
	// The soft memory limit must leave room for these buffers.
	memlimit.Reserve(int64(budget))
	scrub := scrubber(opts.Token)
	b := &Backend{
		name:        name,
		host:        u.Host,
		tokenSource: opts.TokenSource,
		readOnly:    opts.ReadOnly,
		configName:  opts.ConfigName,
		key:         opts.SigningKey,
		omitDeriver: opts.OmitDeriver,
		chunkSize:   chunk,
		concurrency: conc,
		budget:      make(chan struct{}, units(budget)),
		free:        make(chan *[]byte, budget/chunk),
		c: &apiClient{
			base:      u,
			token:     opts.Token,
			userAgent: "cachix-select/" + version,
			http:      hc,
			policy:    opts.Retry.withDefaults(),
			logger:    zerologAdapter{log: logger, scrub: scrub},
			scrub:     scrub,
			failFast:  opts.FailFast,
		},
	}
	return b, nil
}

// String names the cache in messages.
func (b *Backend) String() string { return "Cachix cache " + b.name }

// CacheInfo is the answer of GET /cache/NAME (§4.2).
type CacheInfo struct {
	Name              string   `json:"name"`
	URI               string   `json:"uri"`
	IsPublic          bool     `json:"isPublic"`
	PublicSigningKeys []string `json:"publicSigningKeys"`
	GithubUsername    string   `json:"githubUsername"`
	// Permission is "Read", "Write" or "Admin".
	Permission string `json:"permission"`
	// PreferredCompressionMethod is "XZ" or "ZSTD".
	PreferredCompressionMethod string `json:"preferredCompressionMethod"`
}

// errNoCredentials: neither a token nor a signing key was found, which
// the user must fix (bad input: exit 2, as for an S3 cache without keys).
var errNoCredentials = fault.BadInput("no Cachix credentials")

// Open checks that there are credentials and, in token-only mode, that the
// cache exists and the token may write to it, as `cachix push` does (§2.5,
// §5.2). With a signing key it asks nothing, like cachix, and the cache has
// no compression preference (zstd is used). A dry run (ReadOnly) needs no
// credentials: a public cache answers its reads without a token.
func (b *Backend) Open(ctx context.Context) (backend.Info, error) {
	if b.c.token == "" && b.key == nil && !b.readOnly {
		config := b.configName
		if config == "" {
			config = "~/.config/cachix/cachix.dhall"
		}
		return backend.Info{}, &cacheError{
			msg: fmt.Sprintf("neither an auth token nor a signing key for cache %s: an auth token is read from "+
				"--auth-token-file, the manifest's authTokenFile, $CACHIX_AUTH_TOKEN or authToken in "+
				"%s; a signing key from --signing-key-file, the manifest's "+
				"signingKeyFile, $CACHIX_SIGNING_KEY or binaryCaches in that file", b.name, config),
			sentinel: backend.ErrUnauthorized,
			cause:    errNoCredentials,
		}
	}
	if b.key != nil {
		return backend.Info{}, nil
	}
	ci, err := b.cacheInfo(ctx, !b.readOnly) // a push is about to write
	if err != nil {
		return backend.Info{}, err
	}
	if ci.Permission == "Read" && !b.readOnly {
		return backend.Info{}, &cacheError{
			msg:      fmt.Sprintf("the auth token%s may only read cache %s, not write to it", b.tokenFrom(), b.name),
			sentinel: backend.ErrUnauthorized,
		}
	}
	var info backend.Info
	switch ci.PreferredCompressionMethod {
	case "XZ":
		info.PreferredCompression = &narstream.Compression{Method: narstream.XZ, Level: 2}
	case "ZSTD":
		info.PreferredCompression = &narstream.Compression{Method: narstream.Zstd, Level: 2}
	}
	return info, nil
}

// CacheInfo fetches the cache's metadata (URI, visibility, public keys,
// permission, preferred compression). It works without a token for public
// caches.
func (b *Backend) CacheInfo(ctx context.Context) (*CacheInfo, error) { return b.cacheInfo(ctx, false) }

// cacheInfo is CacheInfo; write says a refusal is one to write.
func (b *Backend) cacheInfo(ctx context.Context, write bool) (*CacheInfo, error) {
	op := "reading cache " + b.name
	r, err := b.c.api(ctx, http.MethodGet, "/cache/"+escape(b.name), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !r.ok() {
		return nil, b.cacheStatusError(op, r, write)
	}
	var ci CacheInfo
	if err := decodeJSON(r, &ci); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &ci, nil
}

// Missing asks the cache which of paths it lacks, 32768 hashes per request,
// one request after another (§4.3).
func (b *Backend) Missing(ctx context.Context, paths []string) (map[string]bool, error) {
	byHash := make(map[string][]string, len(paths))
	hashes := make([]string, 0, len(paths))
	for _, p := range paths {
		sp, err := parseStorePath(p)
		if err != nil {
			return nil, err
		}
		if _, seen := byHash[sp.Hash()]; !seen {
			hashes = append(hashes, sp.Hash())
		}
		byHash[sp.Hash()] = append(byHash[sp.Hash()], p)
	}
	missing := make(map[string]bool)
	op := "asking cache " + b.name + " which paths it lacks"
	for start := 0; start < len(hashes); start += missingBatch {
		batch := hashes[start:min(start+missingBatch, len(hashes))]
		r, err := b.c.api(ctx, http.MethodPost, "/cache/"+escape(b.name)+"/narinfo", nil, batch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !r.ok() {
			return nil, b.cacheStatusError(op, r, false)
		}
		// A JSON array, as the protocol says; null would decode as an
		// empty list and count every path as present: a push that did
		// nothing recorded as done.
		var got *[]string
		if err := decodeJSON(r, &got); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if got == nil {
			return nil, fmt.Errorf("%s: the answer (HTTP %d) is null, not a list of hashes", op, r.status)
		}
		for _, h := range *got {
			if _, asked := byHash[h]; !asked {
				return nil, fmt.Errorf("%s: the answer (HTTP %d) names %q, a hash not asked about", op, r.status, h)
			}
		}
		for _, h := range *got {
			for _, p := range byHash[h] {
				missing[p] = true
			}
		}
	}
	return missing, nil
}

// keepTokenAtHome is the API client's redirect policy. Go's default sends
// the Authorization header on to the same host name whatever the scheme
// or port, so an https host redirecting to http:// would hand the token
// to anyone on the path. The Cachix API never redirects: a redirect that
// leaves the origin (scheme, host and port) of a request carrying the
// token is refused, naming only the two origins.
// errRedirectRefused marks such a refusal: final, never retried.
var errRedirectRefused = errors.New("redirect refused")

func keepTokenAtHome(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0]
	if first.Header.Get("Authorization") != "" && origin(req.URL) != origin(first.URL) {
		return fmt.Errorf("%w: the server redirected %s to %s; the auth token is not sent to another origin (check --host)",
			errRedirectRefused, origin(first.URL), origin(req.URL))
	}
	return nil
}

// origin is a URL's scheme://host:port, with no user, path or query.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}

// cacheStatusError turns an unsuccessful answer from an endpoint about the
// cache as a whole into a clear error: 401/403 and 404 get the messages
// `cachix` gives (§7.2), anything else the status and the server's words.
func (b *Backend) cacheStatusError(op string, r *response, write bool) error {
	herr := b.httpError(op, r)
	switch r.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return b.unauthorized(herr, write)
	case http.StatusNotFound:
		return &cacheError{msg: fmt.Sprintf("cache %s does not exist", b.name),
			sentinel: backend.ErrCacheNotFound, cause: herr}
	}
	return herr
}

// tokenSources says where an auth token may come from.
const tokenSources = "--auth-token-file, $CACHIX_AUTH_TOKEN, the authToken of cachix.dhall (or --config FILE), " +
	"or a manifest's authTokenFile"

// unauthorized explains a 401/403 depending on whether a token was sent
// and whether the request writes (pushing, pinning) or only reads.
func (b *Backend) unauthorized(herr *HTTPError, write bool) error {
	var msg string
	switch {
	case b.c.token == "":
		msg = fmt.Sprintf("cache %s does not exist or is private and needs an auth token (give one with %s)", b.name, tokenSources)
	case write:
		msg = fmt.Sprintf("cache %s does not exist or this token cannot write to it%s", b.name, b.tokenFrom())
	default:
		msg = fmt.Sprintf("cache %s does not exist or this token cannot read it%s", b.name, b.tokenFrom())
	}
	msg += fmt.Sprintf(": HTTP %d", herr.StatusCode)
	if herr.Message != "" {
		msg += ": " + herr.Message
	}
	return &cacheError{msg: msg, sentinel: backend.ErrUnauthorized, cause: herr}
}

// tokenFrom renders " (token from SOURCE)" when the source is known.
func (b *Backend) tokenFrom() string {
	if b.tokenSource == "" {
		return ""
	}
	return " (token from " + b.tokenSource + ")"
}

// httpError wraps an unexpected answer with the server's message.
func (b *Backend) httpError(op string, r *response) *HTTPError {
	return &HTTPError{Op: op, StatusCode: r.status, Message: serverMessage(r.body, b.c.scrub), Attempts: r.attempts}
}

// units is how many budget tokens a buffer of size bytes takes.
func units(size int) int { return max(1, (size+budgetUnit-1)/budgetUnit) }

// getBuffer takes a part buffer of size bytes (chunkSize ones come from
// the pool) once the budget allows, and counts it as held.
func (b *Backend) getBuffer(ctx context.Context, size int) (*[]byte, error) {
	b.budgetMu.Lock()
	for i := range units(size) {
		select {
		case b.budget <- struct{}{}:
		case <-ctx.Done():
			for range i {
				<-b.budget
			}
			b.budgetMu.Unlock()
			return nil, ctx.Err()
		}
	}
	b.budgetMu.Unlock()
	n := b.bufInUse.Add(1)
	for {
		peak := b.bufPeak.Load()
		if n <= peak || b.bufPeak.CompareAndSwap(peak, n) {
			break
		}
	}
	if size == b.chunkSize {
		select {
		case buf := <-b.free:
			return buf, nil
		default:
		}
	}
	buf := make([]byte, size)
	return &buf, nil
}

// putBuffer returns a part buffer. reusable is false when an HTTP attempt
// might still read it; such a buffer is left to the garbage collector.
func (b *Backend) putBuffer(buf *[]byte, reusable bool) {
	b.bufInUse.Add(-1)
	if reusable && len(*buf) == b.chunkSize {
		select {
		case b.free <- buf:
		default:
		}
	}
	for range units(len(*buf)) {
		<-b.budget
	}
}

// partBufferSize is the size of a NAR's first part buffer: a part, or
// for a NAR that surely compresses into less than 1 MiB (zstd and xz add
// at most a few bytes per 64 KiB they cannot compress), that bound. Larger
// ones reuse the free part buffers rather than leave garbage behind.
func (b *Backend) partBufferSize(narSize uint64) int {
	if bound := narSize + narSize/256 + 64<<10; bound < min(budgetUnit, uint64(b.chunkSize)) {
		return int(bound)
	}
	return b.chunkSize
}

// Factory builds Cachix backends for target.Cachix references (the
// "cachix" scheme of a backend.Registry).
type Factory struct{}

// Scheme is "cachix".
func (Factory) Scheme() string { return target.Cachix{}.Scheme() }

// New builds the backend for t: its cache and host, its token and signing
// key, and the network bounds of opts.
func (Factory) New(t *target.Target, opts backend.Options) (backend.Backend, error) {
	ref, ok := t.Ref.(target.Cachix)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a Cachix cache", backend.ErrNotSupported, t.Ref)
	}
	retry := RetryPolicy{MaxTotal: opts.Network.RetryFor}
	if opts.Network.RetryFor < 0 {
		retry.None = true // no retries: the first failure is final
	}
	return New(Options{
		Name: ref.Name, Host: ref.Host,
		Token: t.Token, TokenSource: t.TokenSource, SigningKey: t.SigningKey,
		OmitDeriver: t.OmitDeriver, Logger: opts.Logger, Version: opts.Version,
		ChunkSize: t.ChunkSize, ConcurrentChunks: t.ConcurrentChunks,
		Timeouts: Timeouts{Connect: opts.Network.ConnectTimeout, Stall: opts.Network.StallTimeout},
		Retry:    retry, FailFast: opts.Network.FailFast, ReadOnly: opts.ReadOnly, ConfigName: t.ConfigName,
	})
}

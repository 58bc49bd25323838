// Package cachixserver is a strict, in-repository implementation of the
// Cachix HTTP API (docs/cachix-protocol.md) for tests.
//
// It is written from the protocol document alone, independently of the
// client in pushlib, so that it can catch client bugs: it rejects a wrong
// hash, size, field name, reference format or signature with HTTP 400 and
// a plain-text message, counts everything it sees, can inject 429/5xx
// responses and dropped connections, and serves what it received as a
// standard Nix binary cache so that real Nix can substitute from it.
//
// See README.md in this directory for the endpoints, checks and choices.
package cachixserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// MaxBulkHashes is the largest number of hashes one bulk narinfo query may
// carry; the official client batches at this size.
const MaxBulkHashes = 32768

// DefaultMinPartSize is S3's minimum size of every part but the last.
const DefaultMinPartSize = 5 << 20

// Config configures a Server. The zero value of every field is usable.
type Config struct {
	// Caches are the binary caches the server knows.
	Caches []CacheConfig
	// Listen is the address Start listens on (default 127.0.0.1:0).
	Listen string
	// BaseURL is the server's own URL ("http://host:port"), used for
	// presigned upload URLs and cache URIs. Start fills it in; with
	// New+Handler it defaults to "http://" + the request's Host.
	BaseURL string
	// FaultRate is the probability (0..1) that a faultable request fails.
	FaultRate float64
	// FaultKinds are the faults to choose from (default: all of them).
	FaultKinds []FaultKind
	// FaultBinaryCache also subjects the binary-cache view (what Nix
	// reads) to faults; by default only the API and storage are faulted.
	FaultBinaryCache bool
	// RetryAfter is the Retry-After value (seconds) sent with an injected
	// 429; a negative value sends no Retry-After header.
	RetryAfter int
	// Seed makes the fault sequence deterministic.
	Seed int64
	// MinPartSize is the minimum size of every uploaded part except the
	// last, checked on completion (0 means DefaultMinPartSize, a negative
	// value disables the check).
	MinPartSize int64
	// DataDir, if set, keeps uploaded data in files under a fresh
	// directory inside it (removed by Close) instead of in memory.
	DataDir string
	// Log receives one line per request (never tokens or signatures).
	Log io.Writer
	// Now is the clock used for pins (default time.Now).
	Now func() time.Time
	// StorageDelay makes every storage PUT take at least this long, so
	// that a client's parts in flight can be counted (Stats.MaxConcurrentPuts).
	StorageDelay time.Duration
	// DeferVerification makes a completion publish the NAR once its parts,
	// claims and signature check out, with the file hash and size the
	// client claimed; the streaming pass over the data (hashes, sizes,
	// decompression, NAR structure) waits for VerifyDeferred, which takes
	// any NAR that fails it out of the cache again. For benchmarks that
	// measure the client's CPU alone: the server's verification does not
	// then run on the same cores during the push. Never for tests of the
	// client's correctness.
	DeferVerification bool
}

// CacheConfig describes one binary cache.
type CacheConfig struct {
	// Name is the cache name.
	Name string
	// Public caches allow reads without a token.
	Public bool
	// WriteTokens may read and push; ReadTokens may only read.
	WriteTokens, ReadTokens []string
	// SelfSigned caches require the client's signature (cSig) made with
	// the key whose public half is PublicKey; otherwise the server signs.
	SelfSigned bool
	// PublicKey is the bare base64 32-byte ed25519 public key of a
	// self-signed cache. Empty means "not registered yet" (POST /key).
	PublicKey string
	// PreferredCompression is "ZSTD" (default) or "XZ".
	PreferredCompression string
	// GithubUsername is reported by GET /cache (default "cachix-test").
	GithubUsername string
}

// Server is a strict Cachix test server. All methods are safe for
// concurrent use.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	blobs  *blobStore
	faults *faultInjector
	now    func() time.Time

	mu          sync.Mutex
	baseURL     string
	caches      map[string]*cache
	tokens      map[string]bool
	uploads     map[string]*upload
	presigned   map[string]*presign
	rejectPaths map[string]bool
	stats       Stats
	// putsInFlight counts storage PUTs being handled (Stats.MaxConcurrentPuts).
	putsInFlight int
	// deferred are the completions whose data VerifyDeferred has yet to check.
	deferred []deferredCheck

	httpServer *http.Server
	listener   net.Listener
	serveDone  chan struct{}
}

// New validates cfg and builds a server; serve it with Handler or use Start.
func New(cfg Config) (*Server, error) {
	if len(cfg.Caches) == 0 {
		return nil, errors.New("configuring test server: no caches")
	}
	if cfg.MinPartSize == 0 {
		cfg.MinPartSize = DefaultMinPartSize
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	faults, err := newFaultInjector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring faults: %w", err)
	}
	blobs, err := newBlobStore(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	s := &Server{
		cfg:         cfg,
		blobs:       blobs,
		faults:      faults,
		now:         now,
		baseURL:     strings.TrimSuffix(cfg.BaseURL, "/"),
		caches:      map[string]*cache{},
		tokens:      map[string]bool{},
		uploads:     map[string]*upload{},
		presigned:   map[string]*presign{},
		rejectPaths: map[string]bool{},
		stats:       newStats(),
	}
	for _, cc := range cfg.Caches {
		c, err := newCache(cc)
		if err != nil {
			blobs.close()
			return nil, fmt.Errorf("configuring cache %q: %w", cc.Name, err)
		}
		if _, dup := s.caches[c.name]; dup {
			blobs.close()
			return nil, fmt.Errorf("configuring cache %q: duplicate name", cc.Name)
		}
		s.caches[c.name] = c
		for tok := range c.perms {
			s.tokens[tok] = true
		}
	}
	s.mux = s.routes()
	return s, nil
}

// Start builds a server and serves it on cfg.Listen (default 127.0.0.1:0)
// until Close.
func Start(cfg Config) (*Server, error) {
	addr := cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + ln.Addr().String()
	}
	s, err := New(cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s.listener = ln
	s.httpServer = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second}
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		_ = s.httpServer.Serve(ln)
	}()
	return s, nil
}

// Close stops a started server and removes its data directory.
func (s *Server) Close() error {
	var err error
	if s.httpServer != nil {
		err = s.httpServer.Close()
		<-s.serveDone
	}
	s.blobs.close()
	if err != nil {
		return fmt.Errorf("closing test server: %w", err)
	}
	return nil
}

// Handler returns the server's HTTP handler (API, storage and binary-cache view).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// URL is the API host a client is given (it appends /api/v1 itself).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// BinaryCacheURL is the Nix binary-cache URL of cache name (its "uri"),
// i.e. what Nix uses as a substituter.
func (s *Server) BinaryCacheURL(name string) string {
	return s.URL() + viewPrefix + name
}

// PublicKey returns the Nix-form key ("keyname:base64") that verifies the
// narinfos of cache name: the server's own key on a managed cache, the
// registered key on a self-signed one, "" if there is none.
func (s *Server) PublicKey(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.caches[name]
	if c == nil {
		return ""
	}
	return c.nixPublicKey()
}

// ManagedPublicKey returns the server's own public key for managed cache
// name in Nix form, for trusted-public-keys; "" for a self-signed cache.
func (s *Server) ManagedPublicKey(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.caches[name]
	if c == nil || c.selfSigned {
		return ""
	}
	return c.nixPublicKey()
}

// SetUpstream declares store paths (by hash part) that the upstream cache
// (cache.nixos.org, for Cachix) has: the bulk query reports them present
// and they complete the closures that refer to them, as Cachix does. They
// are not served themselves (Nix gets them from upstream).
func (s *Server) SetUpstream(hashParts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.caches {
		for _, h := range hashParts {
			c.upstream[h] = true
		}
	}
}

// RejectPath makes every completion of the store path with this hash part
// fail with 400 (for tests that check nothing is published or pinned).
func (s *Server) RejectPath(hashPart string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectPaths[hashPart] = true
}

// UnrejectPath undoes RejectPath.
func (s *Server) UnrejectPath(hashPart string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rejectPaths, hashPart)
}

// permission is what a token may do on a cache.
type permission int

const (
	permNone permission = iota
	permRead
	permWrite
)

// String renders the permission as the cache-info JSON enum.
func (p permission) String() string {
	switch p {
	case permWrite:
		return "Write"
	case permRead:
		return "Read"
	default:
		return "None"
	}
}

// cache is the server-side state of one binary cache; guarded by Server.mu.
type cache struct {
	name        string
	public      bool
	perms       map[string]permission
	selfSigned  bool
	publicKey   ed25519.PublicKey
	signer      ed25519.PrivateKey
	keyName     string
	compression string
	github      string

	narinfos map[string]*narinfoEntry
	complete map[string]bool
	// upstream are the hash parts the upstream cache has (SetUpstream).
	upstream map[string]bool
	nars     map[string]*narBlob
	pins     map[string]*pinState
}

// newCache checks one cache configuration and builds its state.
func newCache(cc CacheConfig) (*cache, error) {
	if !validCacheName(cc.Name) {
		return nil, errors.New("invalid cache name")
	}
	c := &cache{
		name:        cc.Name,
		public:      cc.Public,
		perms:       map[string]permission{},
		selfSigned:  cc.SelfSigned,
		keyName:     cc.Name + ".cachix.org-1",
		compression: "ZSTD",
		github:      cc.GithubUsername,
		narinfos:    map[string]*narinfoEntry{},
		complete:    map[string]bool{},
		upstream:    map[string]bool{},
		nars:        map[string]*narBlob{},
		pins:        map[string]*pinState{},
	}
	if c.github == "" {
		c.github = "cachix-test"
	}
	switch cc.PreferredCompression {
	case "", "ZSTD":
	case "XZ":
		c.compression = "XZ"
	default:
		return nil, fmt.Errorf("preferred compression must be ZSTD or XZ, not %q", cc.PreferredCompression)
	}
	for _, t := range cc.ReadTokens {
		if t == "" {
			return nil, errors.New("empty read token")
		}
		c.perms[t] = permRead
	}
	for _, t := range cc.WriteTokens {
		if t == "" {
			return nil, errors.New("empty write token")
		}
		c.perms[t] = permWrite
	}
	if cc.SelfSigned {
		if cc.PublicKey != "" {
			pk, err := parseBarePublicKey(cc.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("parsing public key: %w", err)
			}
			c.publicKey = pk
		}
	} else {
		if cc.PublicKey != "" {
			return nil, errors.New("a public key is only meaningful on a self-signed cache")
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating the server signing key: %w", err)
		}
		c.publicKey, c.signer = pub, priv
	}
	return c, nil
}

// nixPublicKey renders the cache's verifying key in Nix form, or "".
func (c *cache) nixPublicKey() string {
	if c.publicKey == nil {
		return ""
	}
	return c.keyName + ":" + base64.StdEncoding.EncodeToString(c.publicKey)
}

// parseBarePublicKey decodes Cachix's bare base64 32-byte public key.
func parseBarePublicKey(s string) (ed25519.PublicKey, error) {
	if strings.Contains(s, ":") {
		return nil, errors.New("expected bare base64 without a key name")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decoding base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("want %d bytes, got %d", ed25519.PublicKeySize, len(b))
	}
	return ed25519.PublicKey(b), nil
}

// validCacheName accepts the names Cachix allows (lower-case letters, digits, dashes).
func validCacheName(name string) bool {
	if name == "" || len(name) > 100 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// CacheNames lists the configured caches, sorted.
func (s *Server) CacheNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.caches))
	for n := range s.caches {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// logf writes one log line if a log writer is configured.
func (s *Server) logf(format string, args ...any) {
	if s.cfg.Log == nil {
		return
	}
	fmt.Fprintf(s.cfg.Log, "cachixserver: "+format+"\n", args...)
}

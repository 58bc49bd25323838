// Package s3cache writes a plain Nix binary cache into an S3 bucket (AWS
// S3 or any S3-compatible service: MinIO, Cloudflare R2, Backblaze B2,
// Garage), in the layout `nix copy --to s3://…` writes and every Nix can
// substitute from: nix-cache-info, <hash>.narinfo and
// nar/<filehash>.nar.<ext>, under an optional key prefix.
//
// Several machines may push to one bucket at once. Every object is written
// whole (a PUT, a completed multipart upload and a copy are atomic in S3),
// NARs are named by the hash of their bytes, so two writers of one NAR
// write the same object, and a narinfo is written only after its NAR is
// complete (and, as the pipeline guarantees, after the narinfos of its
// references): a substituter never sees a narinfo whose NAR or closure is
// missing. NARs larger than one part are staged under staging/ first (see
// Upload); what a killed push leaves there is cleaned by a later one.
package s3cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/rs/zerolog"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/memlimit"
	"github.com/cachix-select/cachix-select/pushlib/s3cache/s3url"
	"github.com/cachix-select/cachix-select/pushlib/signing"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Defaults; Options can change each.
const (
	// DefaultPartSize is the multipart part size (and the largest NAR sent
	// in one PUT). buffer-size in the URL overrides it.
	DefaultPartSize = 8 << 20
	// DefaultPartConcurrency is how many parts of one NAR upload at once.
	DefaultPartConcurrency = 4
	// DefaultMaxBuffers bounds the part buffers of all uploads together
	// (more on machines with more than 4 cores: two per core): memory
	// stays under that many part sizes whatever the NARs.
	DefaultMaxBuffers = 8
	// DefaultHeadConcurrency is how many narinfo HEAD requests run at once.
	DefaultHeadConcurrency = 16
	// DefaultStaleUploadAge is how old a staging upload or object (or an
	// unfinished upload at a NAR key) must be before any push removes it as
	// abandoned; this machine's dead processes' ones go at once.
	DefaultStaleUploadAge = 24 * time.Hour
)

// The network bounds' defaults, and how often minio-go tries a request
// under a RetryFor budget: its backoff doubles from 200 ms up to 1 s per
// retry (randomised below that), and overflows past 35 retries, so the
// budget ends most retries and the count those against a fast failure.
const (
	defaultConnectTimeout = 10 * time.Second
	defaultStallTimeout   = 60 * time.Second
	budgetMaxRetries      = 35
)

// Content types, as Nix writes them.
const (
	narinfoType   = "text/x-nix-narinfo"
	cacheInfoType = "text/x-nix-cache-info"
	narType       = "application/x-nix-nar"
)

// Options configure an S3 cache.
type Options struct {
	// URL is s3://BUCKET?region=…&endpoint=…&scheme=…&profile=…&prefix=….
	URL string
	// StoreDir is the store the cache serves (default /nix/store).
	StoreDir string
	// SigningKey, if set, signs every narinfo (Sig: name:signature).
	SigningKey *signing.Key
	// OmitDeriver leaves the Deriver line out of narinfos.
	OmitDeriver bool
	// ReadOnly (dry runs) writes nothing: a missing nix-cache-info is an
	// empty cache, and no credentials means anonymous reads.
	ReadOnly bool
	// Credentials are the keys, resolved by target.Resolve. When nil they
	// are resolved here, by the same rules, from CredentialsFile and
	// LookupEnv.
	Credentials *target.S3Credentials
	// CredentialsFile is an AWS shared credentials file named explicitly
	// (--s3-credentials-file; the NixOS unit passes its LoadCredential copy
	// this way). It wins over the environment and ~/.aws/credentials.
	CredentialsFile string
	// LookupEnv reads the environment (nil = os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Transport carries the HTTP requests (nil = a transport with
	// minio-go's defaults and a 10 s connect timeout).
	Transport http.RoundTripper
	// MaxRetries is how often minio-go tries one request on 5xx,
	// throttling and connection errors, with jittered exponential backoff
	// capped at 1 s (0 = its default, 10 tries; with RetryFor set, 35).
	MaxRetries int
	// ConnectTimeout bounds connecting (TCP, then TLS) per attempt
	// (0 = 10 s).
	ConnectTimeout time.Duration
	// StallTimeout fails an attempt during which no byte moves, sent or
	// received (0 = 60 s); the attempt is retried like a network error.
	StallTimeout time.Duration
	// RetryFor stops retrying a request once its attempts have been
	// failing this long since the first failure (an attempt under way
	// then may finish); a negative value: no retries; 0: MaxRetries alone.
	RetryFor time.Duration
	// FailFast gives up at once on an endpoint that cannot be reached at
	// all (unknown name, refused, no route) before it answered once; the
	// error matches backend.ErrUnreachable and stops the push.
	FailFast bool
	// PartSize, PartConcurrency, MaxBuffers, HeadConcurrency and
	// StaleUploadAge override the defaults above (0 = default).
	PartSize        int64
	PartConcurrency int
	MaxBuffers      int
	HeadConcurrency int
	StaleUploadAge  time.Duration
	// Logger receives a debug line per request (nil = silent).
	Logger *zerolog.Logger
	// Version is sent in the User-Agent.
	Version string
}

// Cache is an s3:// binary cache.
type Cache struct {
	opts   Options
	loc    s3url.Location
	core   *minio.Core
	signer binarycache.Signer
	creds  *target.S3Credentials
	rt     *roundTripper
	// warnings are what resolving the credentials here found.
	warnings []string

	partSize int64
	// buffers bounds the part buffers in use across uploads; bufPool
	// recycles them.
	buffers  chan struct{}
	bufPool  sync.Pool
	poolOnce sync.Once
	// cleanup removes abandoned staging uploads and objects once, on the
	// first upload (a push with nothing to upload lists nothing).
	cleanup sync.Once
	// strategy forces "head" or "list" in Missing (benchmarks only).
	strategy string
}

// New parses the URL and finds the credentials; nothing is contacted yet.
// Its errors are the user's to fix (bad URL, no or unreadable credentials).
func New(opts Options) (*Cache, error) {
	loc, err := s3url.Parse(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.StoreDir == "" {
		opts.StoreDir = store.DefaultStoreDir
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.PartConcurrency <= 0 {
		opts.PartConcurrency = DefaultPartConcurrency
	}
	if opts.MaxBuffers <= 0 {
		opts.MaxBuffers = max(DefaultMaxBuffers, 2*runtime.GOMAXPROCS(0))
	}
	if opts.HeadConcurrency <= 0 {
		opts.HeadConcurrency = DefaultHeadConcurrency
	}
	if opts.StaleUploadAge <= 0 {
		opts.StaleUploadAge = DefaultStaleUploadAge
	}
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = loc.PartSize
	}
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < s3url.MinPartSize || partSize > s3url.MaxPartSize {
		return nil, fmt.Errorf("%w: part size %d is outside S3's 5 MiB–5 GiB", s3url.ErrBadURL, partSize)
	}
	creds, warnings := opts.Credentials, []string(nil)
	if creds == nil {
		var err error
		creds, warnings, err = target.ResolveS3(target.Options{StoreDir: opts.StoreDir, LookupEnv: opts.LookupEnv,
			ReadOnly: opts.ReadOnly}, opts.CredentialsFile, loc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
	}
	connect := opts.ConnectTimeout
	if connect <= 0 {
		connect = defaultConnectTimeout
	}
	base := opts.Transport
	if base == nil {
		tr, err := minio.DefaultTransport(loc.Secure)
		if err != nil {
			return nil, err
		}
		tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = connect
		base = tr
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = defaultStallTimeout
	}
	switch {
	case opts.RetryFor < 0:
		opts.MaxRetries = 1
	case opts.RetryFor > 0 && opts.MaxRetries == 0:
		opts.MaxRetries = budgetMaxRetries
	}
	rt := &roundTripper{base: base, log: opts.Logger, stall: opts.StallTimeout, connect: connect, failFast: opts.FailFast}
	lookup := minio.BucketLookupDNS
	if loc.Endpoint != "" {
		lookup = minio.BucketLookupPath // as Nix does for a custom endpoint
	}
	core, err := minio.NewCore(loc.Host(), &minio.Options{
		Creds: creds.Provider(), Secure: loc.Secure, Region: loc.Region, BucketLookup: lookup,
		Transport: rt, MaxRetries: opts.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", s3url.ErrBadURL, loc, err)
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	core.SetAppInfo("cachix-select", version)
	// The soft memory limit must leave room for the part buffers.
	memlimit.Reserve(int64(opts.MaxBuffers) * partSize)
	return &Cache{
		opts: opts, loc: loc, core: core, creds: creds, warnings: warnings, rt: rt, partSize: partSize,
		signer:  binarycache.Signer{Key: opts.SigningKey, OmitDeriver: opts.OmitDeriver},
		buffers: make(chan struct{}, opts.MaxBuffers),
	}, nil
}

// String names the cache for messages: the canonical URL (never a secret).
func (c *Cache) String() string { return c.loc.String() }

// Location is the parsed URL.
func (c *Cache) Location() s3url.Location { return c.loc }

// Warnings are what resolving the credentials here found worth saying.
func (c *Cache) Warnings() []string { return c.warnings }

// CredentialsSource says where the keys came from ("$AWS_ACCESS_KEY_ID",
// "profile default in /root/.aws/credentials"), never what they are.
func (c *Cache) CredentialsSource() string { return c.creds.Source() }

// key is the object key of a file of the cache.
func (c *Cache) key(name string) string { return c.loc.Prefix + name }

// Open reads nix-cache-info, which checks in one request that the bucket
// exists, the endpoint answers, the region and the keys are right and the
// clocks agree; it writes nix-cache-info into a new cache.
func (c *Cache) Open(ctx context.Context) (backend.Info, error) {
	name := c.key(binarycache.CacheInfoFile)
	var data []byte
	var rerr error
	err := c.do(ctx, func(ctx context.Context) error {
		obj, _, _, err := c.core.GetObject(ctx, c.loc.Bucket, name, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		data, rerr = io.ReadAll(io.LimitReader(obj, 64<<10))
		obj.Close()
		return rerr
	})
	if err == nil || rerr != nil {
		if rerr != nil {
			return backend.Info{}, c.classify(err, "reading "+name)
		}
		if err := binarycache.CheckCacheInfo(data, c.opts.StoreDir, c.String()); err != nil {
			return backend.Info{}, &Error{msg: err.Error(), sentinel: backend.ErrRejected}
		}
		return backend.Info{}, nil
	}
	if code(err) != "NoSuchKey" {
		return backend.Info{}, c.classify(err, "reading "+name)
	}
	if c.opts.ReadOnly {
		return backend.Info{}, nil
	}
	if err := c.put(ctx, name, []byte(binarycache.CacheInfo(c.opts.StoreDir)), cacheInfoType); err != nil {
		return backend.Info{}, c.classify(err, "writing "+name)
	}
	return backend.Info{}, nil
}

// put writes a small object in one PUT, signed with its SHA-256.
func (c *Cache) put(ctx context.Context, key string, data []byte, contentType string) error {
	return c.do(ctx, func(ctx context.Context) error {
		_, err := c.core.PutObject(ctx, c.loc.Bucket, key, newBytesReader(data), int64(len(data)), "", sha256Hex(data),
			minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true})
		return err
	})
}

// ListPageCost is what one page of a listing (1,000 keys) costs in HEAD
// requests, in time. Measured against MinIO on loopback
// (BenchmarkMissing2000: 2,000 narinfos in 2 pages took 144 ms, 2,000
// HEADs 16 at a time 802 ms, so a page is worth about 180 HEADs); AWS
// lists a page in about 100 ms where 16 parallel HEADs cost about 1 ms
// each. Below this many paths, Missing sends HEADs.
const ListPageCost = 100

// Missing reports the paths without a narinfo. A closure of up to
// ListPageCost paths is checked with one HEAD per narinfo; a larger one
// with a listing of the narinfo keys from the smallest hash it needs,
// which stops as soon as the listing would cost more than HEADing what is
// left: narinfo keys are sorted by hash and hashes are uniform, so the
// share of the hash space a page covers tells how many pages the rest of a
// large bucket would take.
func (c *Cache) Missing(ctx context.Context, paths []string) (map[string]bool, error) {
	byHash := make(map[string]string, len(paths))
	hashes := make([]string, 0, len(paths))
	for _, p := range paths {
		h := store.HashPart(p)
		if _, dup := byHash[h]; !dup {
			hashes = append(hashes, h)
		}
		byHash[h] = p
	}
	sort.Strings(hashes)
	present := map[string]bool{}
	rest := hashes
	if len(hashes) > 0 && (c.strategy == "list" || c.strategy == "" && len(hashes) > ListPageCost) {
		var err error
		rest, err = c.listNarinfos(ctx, hashes, present)
		switch {
		case errors.Is(err, backend.ErrUnauthorized):
			// Keys (or an anonymous dry run) that may read objects but not
			// list the bucket: HEAD needs only read access.
			rest = hashes
		case err != nil:
			return nil, err
		}
	}
	if err := c.headNarinfos(ctx, rest, present); err != nil {
		return nil, err
	}
	missing := map[string]bool{}
	for _, h := range hashes {
		if !present[h] {
			missing[byHash[h]] = true
		}
	}
	return missing, nil
}

// listNarinfos lists narinfo keys from the smallest needed hash and marks
// those present; it returns the hashes the listing did not reach.
func (c *Cache) listNarinfos(ctx context.Context, hashes []string, present map[string]bool) ([]string, error) {
	need := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		need[h] = true
	}
	start := hashFraction(hashes[0])
	end := hashFraction(hashes[len(hashes)-1])
	lctx, done := c.bounded(ctx)
	defer done(nil)
	objects := c.core.ListObjectsIter(lctx, c.loc.Bucket, minio.ListObjectsOptions{
		Prefix: c.loc.Prefix, StartAfter: c.loc.Prefix + hashes[0], MaxKeys: 1000,
	})
	seen, pages := 0, 0
	reached := "" // every hash ≤ reached is known
	for obj := range objects {
		if obj.Err != nil {
			return nil, c.classify(done(obj.Err), "listing "+c.String())
		}
		name := strings.TrimPrefix(obj.Key, c.loc.Prefix)
		if h, ok := strings.CutSuffix(name, ".narinfo"); ok && len(h) == 32 && !strings.Contains(h, "/") {
			if need[h] {
				present[h] = true
			}
			reached = h
		}
		if seen++; seen%1000 != 0 || reached == "" {
			continue
		}
		pages++
		left := len(hashes) - sort.SearchStrings(hashes, reached+"\x00")
		if left == 0 {
			return nil, nil
		}
		if c.strategy == "" && !keepListing(pages, start, hashFraction(reached), end, left) {
			return hashes[len(hashes)-left:], nil // HEAD the rest
		}
	}
	return nil, nil // the listing reached the end: what it did not list is missing
}

// keepListing says whether listing on is cheaper than HEADing the left
// hashes, when pages pages took the listing from the hash fraction start
// to at and the needed hashes end at end: hashes are uniform, so the pages
// still to come are in proportion to the hash space still to cover.
func keepListing(pages int, start, at, end float64, left int) bool {
	covered := at - start
	if covered <= 0 {
		return true
	}
	pagesLeft := float64(pages) * (end - at) / covered
	return pagesLeft*ListPageCost <= float64(left)
}

// hashFraction places a nix-base32 hash in [0, 1): the order of keys is
// the order of this fraction (the alphabet is sorted).
func hashFraction(h string) float64 {
	f, scale := 0.0, 1.0
	for i := 0; i < len(h) && i < 10; i++ {
		d := strings.IndexByte(nixbase32.Alphabet, h[i])
		if d < 0 {
			d = 0
		}
		scale /= 32
		f += float64(d) * scale
	}
	return f
}

// headNarinfos HEADs the narinfo of each hash, a few at a time.
func (c *Cache) headNarinfos(ctx context.Context, hashes []string, present map[string]bool) error {
	if len(hashes) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan string)
	for i := 0; i < c.opts.HeadConcurrency && i < len(hashes); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				key := c.key(h + ".narinfo")
				err := c.do(ctx, func(ctx context.Context) error {
					_, err := c.core.StatObject(ctx, c.loc.Bucket, key, minio.StatObjectOptions{})
					return err
				})
				mu.Lock()
				switch {
				case err == nil:
					present[h] = true
				case code(err) == "NoSuchKey":
				case firstErr == nil:
					firstErr = c.classify(err, "checking "+key)
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, h := range hashes {
		select {
		case work <- h:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// code is the S3 error code of err ("" when it is not an S3 error).
func code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// Factory builds S3 caches for target.S3 references (the "s3" scheme of a
// backend.Registry).
type Factory struct{}

// Scheme is "s3".
func (Factory) Scheme() string { return target.S3{}.Scheme() }

// New builds the cache for t with its resolved keys and signing key.
func (Factory) New(t *target.Target, opts backend.Options) (backend.Backend, error) {
	ref, ok := t.Ref.(target.S3)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an S3 cache", backend.ErrNotSupported, t.Ref)
	}
	c, err := New(Options{URL: ref.Location.String(), StoreDir: opts.StoreDir, SigningKey: t.SigningKey,
		OmitDeriver: t.OmitDeriver, ReadOnly: opts.ReadOnly, Credentials: t.S3, Logger: opts.Logger, Version: opts.Version,
		ConnectTimeout: opts.Network.ConnectTimeout, StallTimeout: opts.Network.StallTimeout,
		RetryFor: opts.Network.RetryFor, FailFast: opts.Network.FailFast})
	if err != nil {
		return nil, fault.BadInputf("%w", err)
	}
	return c, nil
}

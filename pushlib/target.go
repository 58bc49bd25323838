package pushlib

import (
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
	"github.com/cachix-select/cachix-select/pushlib/creds"
	"github.com/cachix-select/cachix-select/pushlib/filecache"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
)

// CacheSpec says which cache to push to and where its secrets are, as a
// manifest's "cache" object or the command line does.
type CacheSpec struct {
	// Name is a Cachix cache name; Host its API host ("" = cachix.dhall's
	// hostname, else https://cachix.org).
	Name, Host string
	// URL is a plain binary cache (file:///dir).
	URL string
	// AuthTokenFile and SigningKeyFile come from the manifest; read at run time.
	AuthTokenFile, SigningKeyFile string
	// FlagAuthTokenFile and FlagSigningKeyFile come from the command line
	// and win over the manifest's.
	FlagAuthTokenFile, FlagSigningKeyFile string
}

// Key identifies the cache, so that several manifests for one cache become
// one push, and so that records of what was pushed stay per cache.
func (c CacheSpec) Key() string {
	if c.URL != "" {
		return c.URL
	}
	host := c.Host
	if host == "" {
		host = manifest.DefaultHost
	}
	return "cachix:" + strings.TrimRight(host, "/") + "/" + c.Name
}

// String names the cache for messages.
func (c CacheSpec) String() string {
	if c.URL != "" {
		return c.URL
	}
	return "Cachix cache " + c.Name
}

// FromManifest is the CacheSpec of a manifest.
func FromManifest(m *manifest.Manifest) CacheSpec {
	return CacheSpec{Name: m.Cache.Name, Host: m.Cache.Host, URL: m.Cache.URL,
		AuthTokenFile: m.Cache.AuthTokenFile, SigningKeyFile: m.Cache.SigningKeyFile}
}

// Overrides are command-line settings that win over a manifest's.
type Overrides struct {
	// Cache or To replace the manifest's cache entirely.
	Cache, Host, To string
	// AuthTokenFile and SigningKeyFile win over the manifest's files.
	AuthTokenFile, SigningKeyFile string
}

// Apply returns spec with the overrides applied.
func (o Overrides) Apply(spec CacheSpec) CacheSpec {
	switch {
	case o.To != "":
		spec = CacheSpec{URL: o.To, AuthTokenFile: spec.AuthTokenFile, SigningKeyFile: spec.SigningKeyFile}
	case o.Cache != "":
		spec = CacheSpec{Name: o.Cache, Host: spec.Host, AuthTokenFile: spec.AuthTokenFile, SigningKeyFile: spec.SigningKeyFile}
	}
	if o.Host != "" && spec.URL == "" {
		spec.Host = o.Host
	}
	spec.FlagAuthTokenFile = o.AuthTokenFile
	spec.FlagSigningKeyFile = o.SigningKeyFile
	return spec
}

// BackendOptions are the settings a backend needs besides the cache spec.
type BackendOptions struct {
	StoreDir    string
	OmitDeriver bool
	// SigningKeyName names a bare (Cachix-form) key for file caches.
	SigningKeyName string
	// ConfigPath is cachix.dhall ("" = $XDG_CONFIG_HOME/cachix/cachix.dhall).
	ConfigPath string
	// LookupEnv reads the environment (nil = os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// NoSync skips fsync in file caches (tests, benchmarks).
	NoSync bool
	// ReadOnly: a dry run; the backend must not create or change anything.
	ReadOnly bool
	// Logger receives debug logs of HTTP backends (nil = silent).
	Logger *zerolog.Logger
	// Version is sent in the User-Agent.
	Version string
	// Timeouts bound each HTTP attempt (zero fields: 30 s to connect, 60 s
	// without progress).
	Timeouts cachix.Timeouts
	// RetryFor is how long failed HTTP requests are retried (0: 90 s).
	RetryFor time.Duration
	// FailFast gives up at once on a cache host that cannot be reached at
	// all, instead of retrying it (see cachix.Options.FailFast).
	FailFast bool
}

// OpenBackend builds the backend for spec and resolves its credentials.
// Nothing is contacted yet. Warnings (e.g. a world-readable token file) are
// returned for the caller to show.
func OpenBackend(spec CacheSpec, opts BackendOptions) (backend.Backend, []string, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	cr, err := creds.Resolve(creds.Sources{
		CacheName:              spec.Name,
		AuthTokenFileFlag:      spec.FlagAuthTokenFile,
		SigningKeyFileFlag:     spec.FlagSigningKeyFile,
		ManifestAuthTokenFile:  spec.AuthTokenFile,
		ManifestSigningKeyFile: spec.SigningKeyFile,
		SigningKeyName:         opts.SigningKeyName,
		ConfigPath:             opts.ConfigPath,
		StoreDir:               opts.StoreDir,
		LookupEnv:              opts.LookupEnv,
	})
	if err != nil {
		return nil, nil, BadInputf("%w", err)
	}
	if spec.URL != "" {
		if err := manifest.ValidateCacheURL(spec.URL); err != nil {
			return nil, nil, BadInputf("%v", err)
		}
		if cr.SigningKey != nil && cr.SigningKey.Name == "" {
			return nil, nil, BadInputf("the signing key from %s has no name (Cachix form); give --signing-key-name or use the Nix form name:base64", cr.SigningKeySource)
		}
		fc, err := filecache.New(filecache.Options{URL: spec.URL, StoreDir: opts.StoreDir, SigningKey: cr.SigningKey,
			OmitDeriver: opts.OmitDeriver, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly})
		if err != nil {
			return nil, nil, BadInputf("%w", err)
		}
		return fc, cr.Warnings, nil
	}
	host := spec.Host
	if host == "" {
		host = cr.Hostname
	}
	if host == "" {
		host = manifest.DefaultHost
	}
	cb, err := cachix.New(cachix.Options{
		Name: spec.Name, Host: host,
		Token: cr.Token, TokenSource: cr.TokenSource, SigningKey: cr.SigningKey,
		OmitDeriver: opts.OmitDeriver, Logger: opts.Logger, Version: opts.Version,
		Timeouts: opts.Timeouts, Retry: cachix.RetryPolicy{MaxTotal: opts.RetryFor}, FailFast: opts.FailFast,
	})
	if err != nil {
		return nil, nil, BadInputf("%w", err)
	}
	return cb, cr.Warnings, nil
}

package pushlib

import (
	"os"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/filecache"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/signing"
)

// CacheSpec says which cache to push to and where its secrets are, as a
// manifest's "cache" object or the command line does.
type CacheSpec struct {
	// Name is a Cachix cache name; Host its API host.
	Name, Host string
	// URL is a plain binary cache (file:///dir).
	URL string
	// AuthTokenFile and SigningKeyFile are read at run time.
	AuthTokenFile, SigningKeyFile string
}

// Key identifies the cache, so that several manifests for one cache become one push.
func (c CacheSpec) Key() string {
	if c.URL != "" {
		return c.URL
	}
	return "cachix:" + strings.TrimRight(c.Host, "/") + "/" + c.Name
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
	if o.AuthTokenFile != "" {
		spec.AuthTokenFile = o.AuthTokenFile
	}
	if o.SigningKeyFile != "" {
		spec.SigningKeyFile = o.SigningKeyFile
	}
	return spec
}

// BackendOptions are the settings a backend needs besides the cache spec.
type BackendOptions struct {
	StoreDir    string
	OmitDeriver bool
	// SigningKeyName names a bare (Cachix-form) key for file caches.
	SigningKeyName string
	// LookupEnv reads the environment (nil = os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// NoSync skips fsync in file caches (tests, benchmarks).
	NoSync bool
	// ReadOnly: a dry run; the backend must not create or change anything.
	ReadOnly bool
}

// OpenBackend builds the backend for spec. Nothing is contacted yet.
func OpenBackend(spec CacheSpec, opts BackendOptions) (backend.Backend, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if spec.URL != "" {
		if err := manifest.ValidateCacheURL(spec.URL); err != nil {
			return nil, BadInputf("%v", err)
		}
		key, err := fileCacheKey(spec, opts)
		if err != nil {
			return nil, err
		}
		fc, err := filecache.New(filecache.Options{URL: spec.URL, StoreDir: opts.StoreDir, SigningKey: key,
			OmitDeriver: opts.OmitDeriver, NoSync: opts.NoSync, ReadOnly: opts.ReadOnly})
		if err != nil {
			return nil, BadInputf("%v", err)
		}
		return fc, nil
	}
	return nil, BadInputf("Cachix caches are not supported yet")
}

// fileCacheKey loads the signing key for a plain binary cache: the
// --signing-key-file/manifest file, else $CACHIX_SIGNING_KEY. A bare
// (Cachix-form) key needs a name.
func fileCacheKey(spec CacheSpec, opts BackendOptions) (*signing.Key, error) {
	var text, source string
	if spec.SigningKeyFile != "" {
		if manifest.InStore(spec.SigningKeyFile, storeDirOr(opts.StoreDir)) {
			return nil, BadInputf("signing key file %s is inside the Nix store, which every user can read", spec.SigningKeyFile)
		}
		data, err := os.ReadFile(spec.SigningKeyFile)
		if err != nil {
			return nil, BadInputf("reading signing key file: %v", err)
		}
		text, source = string(data), spec.SigningKeyFile
	} else if v, ok := opts.LookupEnv("CACHIX_SIGNING_KEY"); ok && strings.TrimSpace(v) != "" {
		text, source = v, "$CACHIX_SIGNING_KEY"
	} else {
		return nil, nil
	}
	key, err := signing.Parse(text, opts.SigningKeyName)
	if err != nil {
		return nil, BadInputf("signing key from %s: %v", source, err)
	}
	if key.Name == "" {
		return nil, BadInputf("the signing key from %s has no name (Cachix form); give --signing-key-name or use the Nix form name:base64", source)
	}
	return key, nil
}

func storeDirOr(d string) string {
	if d == "" {
		return "/nix/store"
	}
	return d
}

package target

import (
	"net/url"
	"path/filepath"
	"strings"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/s3cache/s3url"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// DefaultCachixHost is the Cachix API host when neither the command line,
// the manifest nor cachix.dhall names one. Resolving is the one place it
// is applied.
const DefaultCachixHost = "https://cachix.org"

// Ref says which cache a push goes to: exactly one of Cachix, File and S3.
type Ref interface {
	// Scheme keys the backend registry ("cachix", "file", "s3").
	Scheme() string
	// Key identifies the cache: manifests with the same key are pushed
	// together, and records of what was pushed are kept per key.
	Key() string
	// String names the cache in messages.
	String() string
	ref()
}

// Cachix is a Cachix cache: its name, on its API host.
type Cachix struct {
	Name string
	// Host is the API host's URL without a trailing slash, resolved (never "").
	Host string
}

// File is a plain binary cache in a local directory (file:///dir).
type File struct {
	// Dir is the cache's absolute, clean directory.
	Dir string
}

// S3 is a plain binary cache in an S3 bucket (s3://bucket?…).
type S3 struct {
	Location s3url.Location
}

func (Cachix) Scheme() string { return "cachix" }
func (File) Scheme() string   { return "file" }
func (S3) Scheme() string     { return "s3" }

// Key is "cachix:" + host + "/" + name.
func (c Cachix) Key() string { return "cachix:" + c.Host + "/" + c.Name }

// Key is the file:// URL of the directory.
func (f File) Key() string { return "file://" + f.Dir }

// Key is the canonical s3:// URL (parameters sorted, defaults dropped).
func (s S3) Key() string { return s.Location.String() }

func (c Cachix) String() string { return "Cachix cache " + c.Name }
func (f File) String() string   { return f.Key() }
func (s S3) String() string     { return s.Key() }

func (Cachix) ref() {}
func (File) ref()   {}
func (S3) ref()     {}

// ParseURL parses a plain binary cache URL: file:///dir or s3://bucket?….
// Errors are bad input and name the parameter at fault, never the values
// of an s3:// URL.
func ParseURL(raw string) (Ref, error) {
	// Schemes are case-insensitive (RFC 3986): FILE:// is file://.
	if scheme, rest, ok := strings.Cut(raw, "://"); ok && !strings.ContainsAny(scheme, "/?#") {
		raw = strings.ToLower(scheme) + "://" + rest
	}
	switch {
	case strings.HasPrefix(raw, "s3://"):
		loc, err := s3url.Parse(raw)
		if err != nil {
			return nil, err
		}
		return S3{Location: loc}, nil
	case strings.HasPrefix(raw, "file://"):
		dir, err := fileDir(raw)
		if err != nil {
			return nil, err
		}
		return File{Dir: dir}, nil
	}
	if strings.HasPrefix(raw, "/") {
		return nil, fault.BadInputf("%s is a path, not a URL: a file cache is given as file://%s", store.Quote(raw), raw)
	}
	// A URL field never takes a Cachix cache name: say where one goes.
	return nil, fault.BadInputf("%s is not a supported binary cache URL: use file:///path or s3://bucket?… "+
		"(a Cachix cache is named by the first argument, --cache NAME or a manifest's cache.name)", store.Quote(raw))
}

// fileDir extracts the directory of a file:// URL; query parameters are
// not supported and refused rather than silently ignored.
func fileDir(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme != "file":
		return "", fault.BadInputf("%s is not a file:// URL", store.Quote(raw))
	case u.Host != "" && u.Host != "localhost":
		return "", fault.BadInputf("%s: a file URL needs an absolute path and no host (file:///srv/cache)", store.Quote(raw))
	case u.RawQuery != "":
		return "", fault.BadInputf("%s: query parameters are not supported (use --compression-method, --signing-key-file)", store.Quote(raw))
	case !filepath.IsAbs(u.Path):
		return "", fault.BadInputf("%s: a file URL needs an absolute path (file:///srv/cache)", store.Quote(raw))
	}
	return filepath.Clean(u.Path), nil
}

// CheckCacheName checks a Cachix cache name: lower-case letters, digits,
// '-', '_' and '.'.
func CheckCacheName(name string) error {
	if name == "" {
		return fault.BadInputf("the Cachix cache name is empty")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fault.BadInputf("%s is not a valid Cachix cache name", store.Quote(name))
		}
	}
	return nil
}

// CheckHost checks a Cachix API host: an http(s) URL with a host name.
func CheckHost(host string) error {
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fault.BadInputf("%s must be an http(s) URL such as %s", store.Quote(host), DefaultCachixHost)
	}
	return nil
}

// MaxJobs bounds the paths a push uploads at once.
const MaxJobs = 256

// CheckJobs checks a number of paths uploaded at once.
func CheckJobs(n int) error {
	if n < 1 || n > MaxJobs {
		return fault.BadInputf("must be between 1 and %d, not %d", MaxJobs, n)
	}
	return nil
}

// The multipart upload's part sizing, as `cachix push` takes it
// (-s/--chunk-size, -n/--num-concurrent-chunks); the default part is
// half of cachix's 32 MiB, so that memory stays bounded (pushlib/cachix).
const (
	DefaultChunkSize        = 16 << 20
	MinChunkSize            = 5 << 20
	MaxChunkSize            = 5 << 30
	DefaultConcurrentChunks = 4
	MaxConcurrentChunks     = 64
)

// CheckChunkSize checks a part size in bytes: 5 MiB to 5 GiB, as cachix.
func CheckChunkSize(n int) error {
	if n < MinChunkSize || n > MaxChunkSize {
		return fault.BadInputf("must be between %d (5 MiB) and %d (5 GiB) bytes, not %d", MinChunkSize, MaxChunkSize, n)
	}
	return nil
}

// CheckConcurrentChunks checks how many parts of one NAR upload at once.
func CheckConcurrentChunks(n int) error {
	if n < 1 || n > MaxConcurrentChunks {
		return fault.BadInputf("must be between 1 and %d, not %d", MaxConcurrentChunks, n)
	}
	return nil
}

// cachixRef builds a Cachix reference from a checked name and host ("" for
// the default), trimming the host as the API client does.
func cachixRef(name, host string) (Cachix, error) {
	if err := CheckCacheName(name); err != nil {
		return Cachix{}, err
	}
	host = strings.TrimRight(strings.TrimSpace(host), "/")
	if host == "" {
		host = DefaultCachixHost
	}
	if err := CheckHost(host); err != nil {
		return Cachix{}, err
	}
	return Cachix{Name: name, Host: host}, nil
}

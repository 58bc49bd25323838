// Package s3url parses the s3:// binary cache URLs that `nix copy` accepts
// (s3://BUCKET?region=R&endpoint=HOST&scheme=http&profile=P), plus a
// prefix parameter for a cache that lives under a key prefix of the
// bucket. It has no S3 client in it, so that validating a manifest does
// not need one.
package s3url

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// ErrBadURL marks an s3:// URL that cannot be used.
var ErrBadURL = fault.BadInput("unusable s3:// URL")

const (
	// DefaultRegion is Nix's default for s3:// stores.
	DefaultRegion = "us-east-1"
	// MinPartSize and MaxPartSize are S3's limits on a multipart part
	// (the last part may be smaller).
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
)

// Location is a parsed s3:// URL.
type Location struct {
	Bucket string
	// Region signs the requests (default us-east-1, as in Nix).
	Region string
	// Endpoint is the host[:port] of an S3-compatible service; "" is AWS S3
	// (virtual-host addressing). With an endpoint, requests use path-style
	// addressing, as Nix does.
	Endpoint string
	// Secure is false for scheme=http.
	Secure bool
	// Profile names the profile of the shared credentials file ("" = the
	// $AWS_PROFILE or "default" profile, after the environment's keys).
	Profile string
	// Prefix is "" or a key prefix ending in "/" under which the cache lives.
	Prefix string
	// PartSize is buffer-size: the size of multipart parts, 0 = the default.
	PartSize int64
}

// params are the query parameters an s3:// URL may carry, with what they
// mean, for the error on an unknown one.
var params = map[string]bool{
	"region": true, "endpoint": true, "scheme": true, "profile": true, "prefix": true,
	"buffer-size": true, "multipart-upload": true,
}

// nixOnly are Nix store settings that make sense in a `nix copy` URL but
// that cachix-select takes from its own flags instead.
var nixOnly = map[string]string{
	"compression":          "use --compression-method (or the manifest's push.compression)",
	"compression-level":    "use --compression-level",
	"parallel-compression": "compression always uses every core",
	"secret-key":           "use --signing-key-file (or the manifest's cache.signingKeyFile)",
	"narinfo-compression":  "narinfos are stored uncompressed",
	"ls-compression":       "no .ls listings are written",
	"log-compression":      "no build logs are written",
	"write-nar-listing":    "no .ls listings are written",
	"index-debug-info":     "debug info is not indexed",
}

// substituterOnly are Nix store settings that say how Nix substitutes
// from a cache; a substituter URL copied as the push target keeps them,
// and they are ignored (and left out of the canonical URL).
var substituterOnly = map[string]bool{"priority": true, "want-mass-query": true, "trusted": true}

// Parse reads an s3:// URL. Its errors name the parameter at fault, never
// a parameter's value (a URL may hold something secret by mistake).
func Parse(raw string) (Location, error) {
	fail := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w: "+format, append([]any{ErrBadURL}, args...)...)
	}
	if !strings.HasPrefix(raw, "s3://") {
		return fail("an S3 cache URL starts with s3://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail("not a valid URL; write s3://BUCKET?region=R&endpoint=HOST")
	}
	if u.User != nil {
		return fail("s3://%s: credentials do not belong in the URL; use the AWS environment variables, ~/.aws/credentials or --s3-credentials-file", u.Hostname())
	}
	loc := Location{Bucket: u.Host, Region: DefaultRegion, Secure: true}
	name := "s3://" + loc.Bucket
	if loc.Bucket == "" {
		return fail("the URL names no bucket (s3://BUCKET)")
	}
	if err := s3utils.CheckValidBucketNameStrict(loc.Bucket); err != nil {
		return fail("%s: %q is not a valid bucket name", name, loc.Bucket)
	}
	if u.Path != "" && u.Path != "/" {
		return fail("%s: a path after the bucket is not supported; give a key prefix as ?prefix=%s", name, strings.Trim(u.Path, "/"))
	}
	if u.Fragment != "" {
		return fail("%s: the URL has a fragment (#…)", name)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("%s: the query string cannot be parsed", name)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	scheme := ""
	for _, k := range keys {
		if len(q[k]) > 1 {
			return fail("%s: parameter %s is given %d times", name, k, len(q[k]))
		}
		v := q.Get(k)
		if substituterOnly[k] {
			continue // how Nix substitutes from the cache: nothing to push
		}
		if hint, ok := nixOnly[k]; ok {
			return fail("%s: the Nix setting %s is not taken from the URL: %s", name, k, hint)
		}
		if !params[k] {
			return fail("%s: unknown parameter %q; s3:// URLs take region, endpoint, scheme, profile, prefix, buffer-size and multipart-upload", name, k)
		}
		if v == "" {
			return fail("%s: parameter %s is empty", name, k)
		}
		switch k {
		case "region":
			if !validRegion(v) {
				return fail("%s: region must be a region name such as eu-west-1", name)
			}
			loc.Region = v
		case "endpoint":
			ep, epScheme, err := parseEndpoint(v)
			if err != nil {
				return fail("%s: endpoint %v", name, err)
			}
			loc.Endpoint = ep
			if epScheme != "" {
				if scheme != "" && scheme != epScheme {
					return fail("%s: the endpoint says %s but scheme says %s", name, epScheme, scheme)
				}
				scheme = epScheme
			}
		case "scheme":
			if v != "http" && v != "https" {
				return fail("%s: scheme must be http or https", name)
			}
			if scheme != "" && scheme != v {
				return fail("%s: the endpoint says %s but scheme says %s", name, scheme, v)
			}
			scheme = v
		case "profile":
			loc.Profile = v
		case "prefix":
			p := strings.Trim(v, "/")
			for _, seg := range strings.Split(p, "/") {
				if seg == "" || seg == "." || seg == ".." {
					return fail("%s: prefix must be a key prefix such as cache/nix, without empty, . or .. parts", name)
				}
			}
			loc.Prefix = p + "/"
		case "buffer-size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < MinPartSize || n > MaxPartSize {
				return fail("%s: buffer-size must be a number of bytes between %d (5 MiB) and %d (5 GiB)", name, MinPartSize, int64(MaxPartSize))
			}
			loc.PartSize = n
		case "multipart-upload":
			// Accepted for compatibility with Nix URLs: NARs larger than
			// buffer-size are always uploaded in parts.
			if v != "true" && v != "false" {
				return fail("%s: multipart-upload must be true or false", name)
			}
		}
	}
	if scheme == "http" {
		loc.Secure = false
	}
	if !loc.Secure && loc.Endpoint == "" {
		return fail("%s: scheme=http needs an endpoint (AWS S3 is reached over https)", name)
	}
	return loc, nil
}

// parseEndpoint accepts host, host:port, or an http(s):// URL without a
// path, and returns host[:port] and the URL's scheme, if any.
func parseEndpoint(v string) (hostport, scheme string, err error) {
	if i := strings.Index(v, "://"); i >= 0 {
		u, perr := url.Parse(v)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return "", "", errors.New("must be host[:port] or an http(s):// URL")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return "", "", errors.New("must not have a path, a query or credentials")
		}
		v, scheme = u.Host, u.Scheme
	}
	if v == "" || strings.ContainsAny(v, "/?#@ ") {
		return "", "", errors.New("must be host[:port] or an http(s):// URL")
	}
	if strings.Contains(v, ":") && !(strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]")) {
		host, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return "", "", errors.New("must be host[:port] with a port between 1 and 65535")
		}
	}
	return v, scheme, nil
}

// validRegion accepts what region names look like (eu-west-1, auto, garage).
func validRegion(r string) bool {
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return r != ""
}

// String is the canonical URL: the parameters that say where the cache is
// and who signs in, in a fixed order, so that one cache written two ways
// has one name (buffer-size, a tuning knob, is left out).
func (l Location) String() string {
	q := url.Values{}
	if l.Endpoint != "" {
		q.Set("endpoint", l.Endpoint)
	}
	if l.Prefix != "" {
		q.Set("prefix", strings.TrimSuffix(l.Prefix, "/"))
	}
	if l.Profile != "" {
		q.Set("profile", l.Profile)
	}
	if l.Region != DefaultRegion {
		q.Set("region", l.Region)
	}
	if !l.Secure {
		q.Set("scheme", "http")
	}
	s := "s3://" + l.Bucket
	if len(q) > 0 {
		// ':' and '/' need no escaping in a query and read better as they are.
		s += "?" + strings.NewReplacer("%3A", ":", "%2F", "/").Replace(q.Encode())
	}
	return s
}

// Host is the endpoint requests go to.
func (l Location) Host() string {
	if l.Endpoint != "" {
		return l.Endpoint
	}
	return "s3.amazonaws.com"
}

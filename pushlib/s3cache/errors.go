package s3cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/fault"
)

// Errors the S3 service reports that a retry cannot fix: permanent, so the
// pipeline does not retry them.
var (
	// ErrWrongRegion: the URL's region is not the bucket's.
	ErrWrongRegion = fault.Permanent("wrong S3 region")
	// ErrClockSkew: this machine's clock and the service's disagree by
	// more than S3 allows (15 minutes), so every signature is refused.
	ErrClockSkew = fault.Permanent("clock skew")
)

// ErrUnreachable marks an endpoint that did not answer (after retries).
var ErrUnreachable = errors.New("S3 endpoint unreachable")

// Error is an S3 failure explained in one line.
type Error struct {
	msg      string
	sentinel error
	cause    error
}

func (e *Error) Error() string { return e.msg }

// Unwrap exposes the sentinel and the underlying error.
func (e *Error) Unwrap() []error {
	errs := []error{}
	for _, err := range []error{e.sentinel, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// expecting finds the region in MinIO's "the region is wrong; expecting 'X'".
var expecting = regexp.MustCompile(`expecting '([a-z0-9_-]+)'`)

// classify turns a minio-go or transport error into an *Error saying what
// is wrong and what to do; op ("reading nix-cache-info") prefixes the
// errors it cannot explain.
func (c *Cache) classify(err error, op string) error {
	var e *Error
	var g *gaveUp
	if err == nil || errors.As(err, &e) || errors.As(err, &g) || errors.Is(err, context.Canceled) {
		return err
	}
	host, bucket := c.loc.Host(), c.loc.Bucket
	er := minio.ToErrorResponse(err)
	mk := func(sentinel error, format string, args ...any) error {
		return &Error{msg: fmt.Sprintf(format, args...), sentinel: sentinel, cause: err}
	}
	detail := er.Code
	if er.Message != "" {
		detail += ": " + er.Message
	}
	switch er.Code {
	case "NoSuchBucket":
		return mk(backend.ErrCacheNotFound, "bucket %q does not exist at %s: create it first (aws s3 mb s3://%s, mc mb ALIAS/%s), or fix the URL",
			bucket, host, bucket, bucket)
	case "InvalidAccessKeyId":
		return mk(backend.ErrUnauthorized, "%s does not know the access key from %s (InvalidAccessKeyId): check the keys", host, c.creds.Source())
	case "SignatureDoesNotMatch":
		return mk(backend.ErrUnauthorized, "%s refused the secret key from %s (SignatureDoesNotMatch): check that it belongs to the access key", host, c.creds.SecretSource())
	case "InvalidTokenId", "InvalidToken", "ExpiredToken":
		if from := c.creds.SessionSource(); from != "" {
			return mk(backend.ErrUnauthorized, "%s refused the session token from %s (%s): it is wrong or has expired; renew it, or unset it for long-term keys",
				host, from, er.Code)
		}
		return mk(backend.ErrUnauthorized, "%s refused the keys from %s as a session's (%s), though no session token was given: check the keys",
			host, c.creds.Source(), er.Code)
	case "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidSecurity":
		if c.creds.Anonymous() {
			return mk(backend.ErrUnauthorized, "%s denied anonymous access to bucket %q (%s): a dry run without S3 keys can only read a public bucket; give keys",
				host, bucket, detail)
		}
		return mk(backend.ErrUnauthorized, "%s denied access to bucket %q with the credentials from %s (%s): check that they may read and write it",
			host, bucket, c.creds.Source(), detail)
	case "AuthorizationHeaderMalformed", "PermanentRedirect", "InvalidRegion", "IllegalLocationConstraintException":
		region := er.Region
		if m := expecting.FindStringSubmatch(er.Message); region == "" && m != nil {
			region = m[1]
		}
		if region != "" && region != c.loc.Region {
			return mk(ErrWrongRegion, "bucket %q is in region %s, not %s (%s): add region=%s to the URL", bucket, region, c.loc.Region, er.Code, region)
		}
		return mk(ErrWrongRegion, "%s refused region %s for bucket %q (%s): set region= in the URL to the bucket's region", host, c.loc.Region, bucket, detail)
	case "RequestTimeTooSkewed":
		there := "unknown"
		if t := c.rt.serverDate(); !t.IsZero() {
			there = t.UTC().Format(time.RFC3339)
		}
		return mk(ErrClockSkew, "this machine's clock differs from %s's by more than 15 minutes (here %s, there %s; RequestTimeTooSkewed): fix the clock, e.g. timedatectl set-ntp true",
			host, time.Now().UTC().Format(time.RFC3339), there)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		cause := err
		if ue != nil {
			cause = ue.Err
		}
		return mk(ErrUnreachable, "cannot reach %s (%v): check the endpoint and the network", host, cause)
	}
	if er.Code != "" {
		return mk(nil, "%s: %s (HTTP %d)", op, detail, er.StatusCode)
	}
	return fmt.Errorf("%s: %w", op, err)
}

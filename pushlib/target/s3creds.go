package target

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"gopkg.in/ini.v1"

	"github.com/cachix-select/cachix-select/pushlib/fault"
	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
	"github.com/cachix-select/cachix-select/pushlib/s3cache/s3url"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// ErrNoCredentials: no source had S3 credentials (bad input: exit 2).
var ErrNoCredentials = fault.BadInput("no S3 credentials")

// ErrBadCredentials: a credentials source is set but unusable (bad input).
var ErrBadCredentials = fault.BadInput("unusable S3 credentials")

// credentialSources says where to look for the access keys.
type credentialSources struct {
	// File is an explicitly named credentials file (--s3-credentials-file).
	File string
	// Profile is the URL's profile= ("" = $AWS_PROFILE, else default).
	Profile  string
	StoreDir string
	Lookup   func(string) (string, bool)
	// Anonymous is allowed when nothing is found (dry runs only read).
	Anonymous bool
}

// S3Credentials are the keys of an s3:// cache and where they came from.
type S3Credentials struct {
	creds     *credentials.Credentials
	source    string
	anonymous bool
	warnings  []string
	// session says $AWS_SESSION_TOKEN came with the environment's keys.
	session bool
}

// SessionSource names where the session token came from: Source, but
// $AWS_SESSION_TOKEN for keys from the environment; "" for environment
// keys without one.
func (c *S3Credentials) SessionSource() string {
	if c.source != "$AWS_ACCESS_KEY_ID" {
		return c.source
	}
	if c.session {
		return "$AWS_SESSION_TOKEN"
	}
	return ""
}

// Provider gives the keys to minio-go (static keys, or a profile's
// credential_process or SSO, resolved as the AWS SDK does).
func (c *S3Credentials) Provider() *credentials.Credentials { return c.creds }

// Source names where the keys came from ("$AWS_ACCESS_KEY_ID", "profile
// default in /root/.aws/credentials"), never what they are.
func (c *S3Credentials) Source() string { return c.source }

// SecretSource names where the secret key came from: Source, but
// $AWS_SECRET_ACCESS_KEY for keys from the environment.
func (c *S3Credentials) SecretSource() string {
	if c.source == "$AWS_ACCESS_KEY_ID" {
		return "$AWS_SECRET_ACCESS_KEY"
	}
	return c.source
}

// Anonymous reports a dry run without keys, which reads anonymously.
func (c *S3Credentials) Anonymous() bool { return c.anonymous }

// String is Source, so that printing the value never shows a key.
func (c *S3Credentials) String() string { return c.source }

// ResolveS3 finds the keys for an s3:// cache at loc as Resolve does, the
// explicitly named credentials file (--s3-credentials-file) first; for
// programs that build an S3 cache without a Target.
func ResolveS3(opts Options, file string, loc s3url.Location) (*S3Credentials, []string, error) {
	r := newResolver(opts)
	c, err := r.s3Credentials(file, S3{Location: loc})
	return c, r.warnings, err
}

// s3Credentials resolves an S3 ref's keys (see resolveS3Credentials).
func (r *resolver) s3Credentials(file string, ref S3) (*S3Credentials, error) {
	c, err := resolveS3Credentials(credentialSources{File: file, Profile: ref.Location.Profile, StoreDir: r.storeDir,
		Lookup: r.lookup, Anonymous: r.opts.ReadOnly})
	if err != nil {
		return nil, err
	}
	r.warnings = append(r.warnings, c.warnings...)
	return c, nil
}

// resolveS3Credentials finds the keys, highest priority first:
//
//  1. the file named by --s3-credentials-file (an AWS shared credentials
//     file: INI, the URL's profile or [default]); named explicitly, it wins
//     over whatever the environment holds, like every *-file flag;
//  2. $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (and
//     $AWS_SESSION_TOKEN), unless the URL names a profile: as in Nix, an
//     explicit profile= means that profile;
//  3. that profile ($AWS_PROFILE, else "default") in
//     $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
//
// A set-but-empty variable counts as unset, with a warning.
func resolveS3Credentials(s credentialSources) (*S3Credentials, error) {
	r := &S3Credentials{}
	env := func(name string) (string, bool) {
		v, ok, empty := lookupEnv(s.Lookup, name)
		if empty {
			r.warnings = append(r.warnings, emptyWarning("$"+name))
		}
		return v, ok
	}
	profile, explicitProfile := s.Profile, s.Profile != ""
	if !explicitProfile {
		if p, ok := env("AWS_PROFILE"); ok {
			profile, explicitProfile = p, true
		} else {
			profile = "default"
		}
	}

	if s.File != "" {
		source := "--s3-credentials-file " + s.File
		if profile != "default" {
			source = "profile " + profile + " in " + source
		}
		if err := inStore(s.File, s.StoreDir, source); err != nil {
			return nil, err
		}
		if _, err := os.Stat(s.File); err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", ErrBadCredentials, source, fsutil.Cause(err))
		}
		if err := r.fromFile(s.File, profile, source, true, s.StoreDir); err != nil {
			return nil, err
		}
		return r, nil
	}

	if s.Profile == "" {
		id, idOK := env("AWS_ACCESS_KEY_ID")
		secret, secretOK := env("AWS_SECRET_ACCESS_KEY")
		switch {
		case idOK && secretOK:
			token, _ := env("AWS_SESSION_TOKEN")
			r.creds = credentials.NewStaticV4(id, secret, token)
			r.session = token != ""
			r.source = "$AWS_ACCESS_KEY_ID"
			return r, nil
		case idOK:
			return nil, fmt.Errorf("%w: $AWS_ACCESS_KEY_ID is set but $AWS_SECRET_ACCESS_KEY is not", ErrBadCredentials)
		case secretOK:
			return nil, fmt.Errorf("%w: $AWS_SECRET_ACCESS_KEY is set but $AWS_ACCESS_KEY_ID is not", ErrBadCredentials)
		}
	}

	file, fileNamed := env("AWS_SHARED_CREDENTIALS_FILE")
	if !fileNamed {
		file = filepath.Join(homeDir(s.Lookup), ".aws", "credentials")
	}
	source := fmt.Sprintf("profile %s in %s", profile, file)
	if _, err := os.Stat(file); err == nil || fileNamed {
		// A missing default file is no error unless a profile was asked for.
		if err := r.fromFile(file, profile, source, fileNamed || explicitProfile, s.StoreDir); err != nil {
			return nil, err
		}
		if r.creds != nil {
			return r, nil
		}
	} else if explicitProfile {
		return nil, fmt.Errorf("%w: profile %s was asked for, but %s does not exist", ErrBadCredentials, profile, file)
	}

	if s.Anonymous {
		r.creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
		r.source, r.anonymous = "no credentials (anonymous reads)", true
		return r, nil
	}
	return nil, fmt.Errorf("%w: set $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, add a [%s] profile to %s, or give --s3-credentials-file FILE",
		ErrNoCredentials, profile, file)
}

// fromFile loads profile from an AWS shared credentials file. The file is
// parsed here first so that a parse error is reported without the parser's
// message, which may quote a line of the file (and so a secret). Static
// keys, credential_process and SSO profiles are then S3Credentials by
// minio-go's provider, as the AWS SDK would. A file without the profile is
// an error when required, else it leaves r.creds nil.
func (r *S3Credentials) fromFile(file, profile, source string, required bool, storeDir string) error {
	if err := inStore(file, storeDir, source); err != nil {
		return err
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 != 0 {
		r.warnings = append(r.warnings, fmt.Sprintf("S3 credentials file %s is readable by every user (mode %04o); restrict it, e.g. chmod 600", file, fi.Mode().Perm()))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrBadCredentials, source, fsutil.Cause(err))
	}
	cfg, err := ini.LoadSources(ini.LoadOptions{PreserveSurroundedQuote: true}, data) // credential_process is shell: quotes are its own
	if err != nil {
		return fmt.Errorf("%w: %s is not an AWS credentials file (INI with [profile] sections)", ErrBadCredentials, file)
	}
	sec, err := cfg.GetSection(profile)
	if err != nil {
		if sec, err = cfg.GetSection("profile " + profile); err != nil {
			if required {
				return fmt.Errorf("%w: %s has no [%s] section", ErrBadCredentials, file, profile)
			}
			return nil
		}
	}
	if !sec.HasKey("aws_access_key_id") && !sec.HasKey("credential_process") && !sec.HasKey("sso_role_name") {
		if required {
			return fmt.Errorf("%w: [%s] in %s has no aws_access_key_id", ErrBadCredentials, profile, file)
		}
		return nil
	}
	if line := strings.TrimSpace(sec.Key("credential_process").String()); line != "" &&
		sec.Key("aws_access_key_id").String() == "" && sec.Key("aws_secret_access_key").String() == "" &&
		sec.Key("sso_role_name").String() == "" {
		// The process is run here rather than by minio-go (see processCreds).
		creds := credentials.New(&processCreds{line: line, source: source})
		if _, err := creds.GetWithContext(nil); err != nil {
			return fmt.Errorf("%w: %v", ErrBadCredentials, err)
		}
		r.creds, r.source = creds, source
		return nil
	}
	creds := credentials.NewFileAWSCredentials(file, profile)
	v, err := creds.GetWithContext(nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCredentials, source, err)
	}
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return fmt.Errorf("%w: %s lacks aws_access_key_id or aws_secret_access_key", ErrBadCredentials, source)
	}
	r.creds, r.source = creds, source
	return nil
}

// inStore refuses a credentials file inside the Nix store.
func inStore(file, storeDir, source string) error {
	if _, in := store.Within(file, storeDir); in {
		return fmt.Errorf("%w: %s is inside the Nix store, which every user can read: keep secrets outside the store and pass their runtime path", ErrBadCredentials, source)
	}
	return nil
}

// homeDir is $HOME, else the user database's (NixOS activation has no HOME).
func homeDir(lookup func(string) (string, bool)) string {
	if h, ok := lookup("HOME"); ok && h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

package target

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env builds a LookupEnv from pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func keyID(t *testing.T, r *S3Credentials) string {
	t.Helper()
	v, err := r.creds.GetWithContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v.AccessKeyID
}

// TestCredentialPrecedence pins the order: --s3-credentials-file, then
// the environment's keys (unless the URL names a profile), then the
// profile in the shared credentials file.
func TestCredentialPrecedence(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".aws", "credentials"),
		"[default]\naws_access_key_id = HOMEDEFAULT\naws_secret_access_key = s1\n\n[ci]\naws_access_key_id = HOMECI\naws_secret_access_key = s2\n", 0o600)
	explicit := writeFile(t, filepath.Join(t.TempDir(), "creds"),
		"[default]\naws_access_key_id = EXPLICIT\naws_secret_access_key = s3\n[ci]\naws_access_key_id = EXPLICITCI\naws_secret_access_key = s4\n", 0o600)
	other := writeFile(t, filepath.Join(t.TempDir(), "shared"), "[default]\naws_access_key_id = SHARED\naws_secret_access_key = s5\n", 0o600)
	envKeys := []string{"HOME", home, "AWS_ACCESS_KEY_ID", "ENVKEY", "AWS_SECRET_ACCESS_KEY", "s6"}
	for _, tt := range []struct {
		name    string
		s       credentialSources
		want    string
		wantSrc string
	}{
		{"explicit file beats the environment", credentialSources{File: explicit, Lookup: env(envKeys...)}, "EXPLICIT", "--s3-credentials-file " + explicit},
		{"explicit file, URL profile", credentialSources{File: explicit, Profile: "ci", Lookup: env(envKeys...)}, "EXPLICITCI", ""},
		{"environment beats ~/.aws", credentialSources{Lookup: env(envKeys...)}, "ENVKEY", "$AWS_ACCESS_KEY_ID"},
		{"environment beats $AWS_PROFILE", credentialSources{Lookup: env(append(envKeys, "AWS_PROFILE", "ci")...)}, "ENVKEY", ""},
		{"URL profile beats the environment", credentialSources{Profile: "ci", Lookup: env(envKeys...)}, "HOMECI", "profile ci in " + filepath.Join(home, ".aws", "credentials")},
		{"default profile", credentialSources{Lookup: env("HOME", home)}, "HOMEDEFAULT", ""},
		{"$AWS_PROFILE", credentialSources{Lookup: env("HOME", home, "AWS_PROFILE", "ci")}, "HOMECI", ""},
		{"$AWS_SHARED_CREDENTIALS_FILE", credentialSources{Lookup: env("HOME", home, "AWS_SHARED_CREDENTIALS_FILE", other)}, "SHARED", "profile default in " + other},
	} {
		r, err := resolveS3Credentials(tt.s)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := keyID(t, r); got != tt.want {
			t.Errorf("%s: key %s, want %s", tt.name, got, tt.want)
		}
		if tt.wantSrc != "" && r.source != tt.wantSrc {
			t.Errorf("%s: source %q, want %q", tt.name, r.source, tt.wantSrc)
		}
	}
}

func TestSessionTokenAndEmptyVariables(t *testing.T) {
	t.Parallel()
	r, err := resolveS3Credentials(credentialSources{Lookup: env("HOME", t.TempDir(),
		"AWS_ACCESS_KEY_ID", "K", "AWS_SECRET_ACCESS_KEY", "S", "AWS_SESSION_TOKEN", "T", "AWS_PROFILE", " ")})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := r.creds.GetWithContext(nil)
	if v.SessionToken != "T" {
		t.Errorf("session token %q", v.SessionToken)
	}
	if len(r.warnings) != 1 || !strings.Contains(r.warnings[0], "$AWS_PROFILE is set but empty") {
		t.Errorf("warnings %q", r.warnings)
	}
}

func TestCredentialErrors(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	dir := t.TempDir()
	malformed := writeFile(t, filepath.Join(dir, "malformed"), "[default\naws_secret_access_key SECRETVALUE\n", 0o600)
	noKey := writeFile(t, filepath.Join(dir, "nokey"), "[default]\nregion = x\n", 0o600)
	partial := writeFile(t, filepath.Join(dir, "partial"), "[default]\naws_access_key_id = A\n", 0o600)
	for _, tt := range []struct {
		name     string
		s        credentialSources
		sentinel error
		want     string
	}{
		{"nothing anywhere", credentialSources{Lookup: env("HOME", home)}, ErrNoCredentials, "set $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, add a [default] profile to " + filepath.Join(home, ".aws", "credentials") + ", or give --s3-credentials-file"},
		{"half the keys", credentialSources{Lookup: env("HOME", home, "AWS_ACCESS_KEY_ID", "A")}, ErrBadCredentials, "$AWS_SECRET_ACCESS_KEY is not"},
		{"explicit file missing", credentialSources{File: filepath.Join(dir, "none"), Lookup: env("HOME", home)}, ErrBadCredentials, "no such file"},
		{"explicit file unparsable", credentialSources{File: malformed, Lookup: env("HOME", home)}, ErrBadCredentials, "is not an AWS credentials file"},
		{"explicit file without the profile", credentialSources{File: noKey, Profile: "ci", Lookup: env("HOME", home)}, ErrBadCredentials, "has no [ci] section"},
		{"explicit file without keys", credentialSources{File: noKey, Lookup: env("HOME", home)}, ErrBadCredentials, "has no aws_access_key_id"},
		{"explicit file with half the keys", credentialSources{File: partial, Lookup: env("HOME", home)}, ErrBadCredentials, "partial"},
		{"a profile asked for, no file", credentialSources{Profile: "ci", Lookup: env("HOME", home)}, ErrBadCredentials, "profile ci was asked for"},
		{"explicit file in the store", credentialSources{File: "/nix/store/00000000000000000000000000000000-creds", Lookup: env("HOME", home)}, ErrBadCredentials, "inside the Nix store"},
		{"$AWS_SHARED_CREDENTIALS_FILE in the store", credentialSources{Lookup: env("HOME", home, "AWS_SHARED_CREDENTIALS_FILE", "/nix/store/00000000000000000000000000000000-creds")}, ErrBadCredentials, "inside the Nix store"},
	} {
		_, err := resolveS3Credentials(tt.s)
		if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %v saying %q", tt.name, err, tt.sentinel, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("%s: the error quotes the file: %v", tt.name, err)
		}
	}
}

func TestCredentialsFileWarningsAndAnonymous(t *testing.T) {
	t.Parallel()
	f := writeFile(t, filepath.Join(t.TempDir(), "creds"), "[default]\naws_access_key_id = A\naws_secret_access_key = S\n", 0o644)
	r, err := resolveS3Credentials(credentialSources{File: f, Lookup: env()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.warnings) != 1 || !strings.Contains(r.warnings[0], "readable by every user") {
		t.Errorf("warnings %q", r.warnings)
	}
	// ~/.aws/credentials and $AWS_SHARED_CREDENTIALS_FILE get the same warning.
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".aws", "credentials"), "[default]\naws_access_key_id = A\naws_secret_access_key = S\n", 0o644)
	for _, lookup := range []func(string) (string, bool){env("HOME", home), env("HOME", t.TempDir(), "AWS_SHARED_CREDENTIALS_FILE", f)} {
		r, err = resolveS3Credentials(credentialSources{Lookup: lookup})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.warnings) != 1 || !strings.Contains(r.warnings[0], "readable by every user") {
			t.Errorf("%s: warnings %q", r.source, r.warnings)
		}
	}
	// A dry run may read a public bucket without keys.
	r, err = resolveS3Credentials(credentialSources{Lookup: env("HOME", t.TempDir()), Anonymous: true})
	if err != nil || !strings.Contains(r.source, "anonymous") {
		t.Fatalf("anonymous: %v %v", r, err)
	}
}

// A credential_process runs through sh -c, as the AWS SDKs run it: a
// program without arguments, a quoted path with a space; its failure says
// what it printed on stderr, its JSON errors never quote its output.
func TestCredentialProcess(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "with space")
	ok := writeFile(t, filepath.Join(dir, "creds.sh"),
		"#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"PROCKEY\", \"SecretAccessKey\": \"PROCSECRET\", \"SessionToken\": \"TOK\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n", 0o700)
	fails := writeFile(t, filepath.Join(dir, "fails.sh"), "#!/bin/sh\necho 'token expired: run aws sso login' >&2\nexit 3\n", 0o700)
	garbage := writeFile(t, filepath.Join(dir, "garbage.sh"), "#!/bin/sh\necho 'SECRETVALUE is not json'\n", 0o700)
	file := writeFile(t, filepath.Join(t.TempDir(), "config"), "[default]\ncredential_process = \""+ok+"\"\n"+
		"[fails]\ncredential_process = \""+fails+"\" --profile x\n[garbage]\ncredential_process = \""+garbage+"\"\n", 0o600)
	r, err := resolveS3Credentials(credentialSources{File: file, Lookup: env()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.creds.GetWithContext(nil)
	if err != nil || v.AccessKeyID != "PROCKEY" || v.SecretAccessKey != "PROCSECRET" || v.SessionToken != "TOK" {
		t.Fatalf("credential_process without arguments: %+v, %v", v.AccessKeyID, err)
	}
	if r.creds.IsExpired() {
		t.Error("keys valid until 2099 count as expired")
	}
	_, err = resolveS3Credentials(credentialSources{File: file, Profile: "fails", Lookup: env()})
	if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "token expired: run aws sso login") {
		t.Errorf("failing process: %v", err)
	}
	_, err = resolveS3Credentials(credentialSources{File: file, Profile: "garbage", Lookup: env()})
	if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), "printed no JSON credentials") || strings.Contains(err.Error(), "SECRETVALUE") {
		t.Errorf("garbage output: %v", err)
	}
}

// Keys from a credential_process are fetched again five minutes before
// they expire, or in the last tenth of a short life; never after.
func TestProcessRenewal(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ life, before time.Duration }{
		{2 * time.Hour, 5 * time.Minute}, {50 * time.Minute, 5 * time.Minute},
		{10 * time.Minute, time.Minute}, {2 * time.Minute, 12 * time.Second}, {-time.Minute, -6 * time.Second},
	} {
		exp := now.Add(tt.life)
		if got := renewAt(exp, now); !got.Equal(exp.Add(-tt.before)) {
			t.Errorf("life %v: renewed at %v before expiry, want %v", tt.life, exp.Sub(got), tt.before)
		}
	}
	p := &processCreds{}
	p.have, p.expires = true, renewAt(time.Now().Add(-time.Second), time.Now())
	if !p.IsExpired() {
		t.Error("keys past their expiry are not expired")
	}
}

// A credential_process that hangs, children included, is ended by the
// timeout (a pipeline's second process held the output open).
func TestProcessTimeoutEndsChildren(t *testing.T) {
	old := processTimeout
	processTimeout = 300 * time.Millisecond
	t.Cleanup(func() { processTimeout = old })
	start := time.Now()
	_, err := (&processCreds{line: "sleep 30 | cat; echo x", source: "test"}).Retrieve()
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Errorf("got %v, want the timeout", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Retrieve returned after %v, long past its timeout", took)
	}
}

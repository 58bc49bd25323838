package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nix-community/go-nix/pkg/narinfo"

	"github.com/cachix-select/cachix-select/tests/s3server"
)

// s3Partsize is the buffer-size the S3 tests use (the smallest S3 allows),
// so that a path of a few MB is uploaded in several parts.
const s3PartSize = "buffer-size=5242880"

// startS3 runs a MinIO for one test (skipping, or failing in CI, when it is
// not built) and stops it when the test ends.
func startS3(t *testing.T) *s3server.Server {
	t.Helper()
	requireNix(t)
	s3server.Require(t)
	srv, err := s3server.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// s3Env is the environment of a push to srv: its keys, and a HOME without
// ~/.aws (s3cli drops the AWS variables of the developer's shell).
func s3Env(t *testing.T, srv *s3server.Server) []string {
	return append(srv.Env(), "HOME="+t.TempDir())
}

// s3cli is cli without the caller's AWS_* variables, with env added.
func s3cli(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(noAWSEnv(), env...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cachix-select: %v", err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// noAWSEnv is cleanEnv without AWS_* variables.
func noAWSEnv() []string {
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// checkS3Cache asserts what a substituter relies on, at any moment of any
// number of pushes: every narinfo is whole, its NAR is a complete object of
// the size it says, and the narinfo of each of its references exists. It
// returns the number of narinfos.
func checkS3Cache(t *testing.T, srv *s3server.Server, bucket string) int {
	t.Helper()
	ctx := context.Background()
	keys, err := srv.Keys(ctx, bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if !strings.HasSuffix(k, ".narinfo") {
			continue
		}
		n++
		obj, err := srv.Admin().GetObject(ctx, bucket, k, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ni, err := narinfo.Parse(obj)
		obj.Close()
		if err != nil {
			t.Errorf("%s is not a whole narinfo: %v", k, err)
			continue
		}
		st, err := srv.Admin().StatObject(ctx, bucket, ni.URL, minio.StatObjectOptions{})
		if err != nil || uint64(st.Size) != ni.FileSize {
			t.Errorf("%s names %s (%d bytes), which is not complete: %v, %d bytes", k, ni.URL, ni.FileSize, err, st.Size)
		}
		for _, ref := range ni.References {
			h, _, _ := strings.Cut(ref, "-")
			if _, err := srv.Admin().StatObject(ctx, bucket, h+".narinfo", minio.StatObjectOptions{}); err != nil {
				t.Errorf("%s is published but its reference %s is not", k, ref)
			}
		}
	}
	return n
}

// noS3Leftovers asserts that no multipart upload is open and that nothing
// is left in the staging area.
func noS3Leftovers(t *testing.T, srv *s3server.Server, bucket string) {
	t.Helper()
	ctx := context.Background()
	if open, _ := srv.OpenUploads(ctx, bucket); len(open) != 0 {
		t.Errorf("uploads left open: %v", open)
	}
	if staged, _ := srv.Keys(ctx, bucket, "staging/"); len(staged) != 0 {
		t.Errorf("staging objects left: %v", staged)
	}
}

// TestS3PushThenRealNixSubstitutes pushes a closure (small paths sent in
// one PUT, two big ones in parts) from a manifest to a bucket on a real
// MinIO; real Nix then substitutes it over the bucket's HTTP endpoint with
// signatures required. A dry run before writes nothing; a second push
// after sends nothing, which a counting proxy in front of the server sees.
func TestS3PushThenRealNixSubstitutes(t *testing.T) {
	srv := startS3(t)
	t.Parallel()
	ctx := context.Background()
	bucket, err := srv.Bucket(ctx, "roundtrip", true)
	if err != nil {
		t.Fatal(err)
	}
	app := nixBuild(t, "app", t.Name())
	big := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "2", "--arg", "bigSize", "12000000")
	closure := append(closureOf(t, app), closureOf(t, big)...)
	skFile, pk := keypair(t, "s3-test-1")
	dir := t.TempDir()
	env := s3Env(t, srv)
	writeManifestTo := func(name, url string) string {
		m := writeManifest(t, filepath.Join(dir), map[string]any{
			"version": 1,
			"cache":   map[string]any{"url": url, "signingKeyFile": skFile},
			"paths":   []any{map[string]any{"storePath": app}, map[string]any{"storePath": big}},
		})
		named := filepath.Join(dir, name)
		if err := os.Rename(m, named); err != nil {
			t.Fatal(err)
		}
		return named
	}
	m := writeManifestTo("direct.json", srv.URL(bucket, s3PartSize))

	r := s3cli(t, env, "push", "--dry-run", "--json", m)
	if r.code != 0 || count(final(t, r.stdout), "missing") != len(closure) {
		t.Fatalf("dry run (%d): %s\n%s", r.code, r.stderr, r.stdout)
	}
	if keys, _ := srv.Keys(ctx, bucket, ""); len(keys) != 0 {
		t.Fatalf("the dry run wrote %v", keys)
	}

	r = s3cli(t, env, "push", "--json", m)
	if r.code != 0 {
		t.Fatalf("push failed (%d): %s", r.code, r.stderr)
	}
	if res := final(t, r.stdout); count(res, "pushed") != len(closure) {
		t.Fatalf("pushed %d of %d: %v", count(res, "pushed"), len(closure), res)
	}
	if n := checkS3Cache(t, srv, bucket); n != len(closure) {
		t.Errorf("%d narinfos in the bucket, want %d", n, len(closure))
	}
	noS3Leftovers(t, srv, bucket)

	for _, root := range []string{app, big} {
		fresh, err := substitute(t, srv.HTTPURL(bucket, ""), pk, root)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range closureOf(t, root) {
			if got, want := narHashIn(t, fresh, p), narHashIn(t, "", p); got != want || got == "" {
				t.Errorf("%s: substituted narHash %q, local %q", p, got, want)
			}
		}
	}

	// Nothing is sent again: the proxy sees one GET (nix-cache-info) and a
	// HEAD per narinfo (a small closure), and no PUT or POST.
	proxy := s3server.NewProxy(srv.Endpoint)
	defer proxy.Close()
	again := writeManifestTo("proxied.json", "s3://"+bucket+"?scheme=http&endpoint="+proxy.Endpoint)
	r = s3cli(t, env, "push", "--json", again)
	if r.code != 0 {
		t.Fatalf("second push failed (%d): %s", r.code, r.stderr)
	}
	res := final(t, r.stdout)
	if count(res, "pushed") != 0 || int(res["present"].(float64)) != len(closure) {
		t.Fatalf("second push: %v", res)
	}
	counts := proxy.Counts()
	t.Logf("no-op push of %d paths: requests %v", len(closure), counts)
	// The GETs: nix-cache-info, and one narinfo whose signature is checked
	// against the push's key.
	if counts["PUT"]+counts["POST"]+counts["DELETE"] != 0 || counts["GET"] != 2 || counts["HEAD"] != len(closure) {
		t.Errorf("the no-op push made requests %v, want 2 GET and %d HEAD", counts, len(closure))
	}

	substituteOverS3(t, srv, bucket, pk, app)
}

// substituteOverS3 has real Nix substitute through an s3:// URL when this
// Nix opens s3:// URLs (Debian's Nix 2.8 and 2.26 do not: then it says so;
// sid's 2.34 does, unsigned, being built without AWS support: the bucket's
// public-read policy lets it in).
func substituteOverS3(t *testing.T, srv *s3server.Server, bucket, pk, path string) {
	t.Helper()
	url := srv.URL(bucket, "")
	probe := exec.Command("nix", "--extra-experimental-features", "nix-command", "store", "ping", "--store", url)
	probe.Env = append(os.Environ(), srv.Env()...)
	if out, err := probe.CombinedOutput(); err != nil && strings.Contains(string(out), "don't know how to open Nix store") {
		t.Logf("SKIP: substituting over s3:// (this Nix has no S3 support: %s)", strings.TrimSpace(string(out)))
		return
	}
	root := filepath.Join(t.TempDir(), "fresh-s3")
	cmd := exec.Command("nix", "--extra-experimental-features", "nix-command", "copy", "--from", url, "--to", root,
		"--option", "require-sigs", "true", "--option", "trusted-public-keys", pk, "--option", "substituters", "", path)
	cmd.Env = append(os.Environ(), append(srv.Env(), "XDG_CACHE_HOME="+t.TempDir())...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nix copy --from %s: %v\n%s", url, err, out)
	}
	if got, want := narHashIn(t, root, path), narHashIn(t, "", path); got != want {
		t.Errorf("over s3://: narHash %q, want %q", got, want)
	}
	t.Logf("real Nix substituted %s over s3:// (signatures required)", path)
}

// TestS3ConcurrentPushers runs four pushes of overlapping closures (shared
// small paths and two shared multipart NARs) into one bucket at once, as
// four machines would. While they run, the bucket is checked over and over:
// no narinfo is ever visible before its NAR or its references. Afterwards
// every path is there, nothing is left half-uploaded, and real Nix
// substitutes every root.
func TestS3ConcurrentPushers(t *testing.T) {
	srv := startS3(t)
	t.Parallel()
	ctx := context.Background()
	bucket, err := srv.Bucket(ctx, "concurrent", true)
	if err != nil {
		t.Fatal(err)
	}
	salt := t.Name()
	app := nixBuild(t, "app", salt)
	lib := nixBuild(t, "lib", salt)
	exe := nixBuild(t, "exe", salt)
	big := nixBuild(t, "big", salt, "--arg", "bigCount", "2", "--arg", "bigSize", "11000000")
	skFile, pk := keypair(t, "s3-concurrent-1")
	url := srv.URL(bucket, s3PartSize)
	rootsOf := [][]string{{app, big}, {lib, big}, {app}, {exe, big, lib}}

	var wg sync.WaitGroup
	results := make([]result, len(rootsOf))
	for i, roots := range rootsOf {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"push", "-q", "-j", "4", "--to", url, "--signing-key-file", skFile}, roots...)
			results[i] = s3cli(t, s3Env(t, srv), args...)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	checks := 0
watch:
	for {
		select {
		case <-done:
			break watch
		default:
			checkS3Cache(t, srv, bucket)
			checks++
		}
	}
	t.Logf("checked the bucket %d times while the pushes ran", checks)
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("pusher %d failed (%d): %s", i, r.code, r.stderr)
		}
	}
	want := map[string]bool{}
	for _, roots := range rootsOf {
		for _, root := range roots {
			for _, p := range closureOf(t, root) {
				want[p] = true
			}
		}
	}
	if n := checkS3Cache(t, srv, bucket); n != len(want) {
		t.Errorf("%d narinfos in the bucket, want %d", n, len(want))
	}
	noS3Leftovers(t, srv, bucket)
	for _, root := range []string{app, big, exe} {
		fresh, err := substitute(t, srv.HTTPURL(bucket, ""), pk, root)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range closureOf(t, root) {
			if got, want := narHashIn(t, fresh, p), narHashIn(t, "", p); got != want || got == "" {
				t.Errorf("%s: substituted narHash %q, local %q", p, got, want)
			}
		}
	}
}

// TestS3KilledDuringMultipart kills a push (SIGKILL) while a multipart
// upload is open: the bucket holds no narinfo without its NAR and
// references; the re-run completes, and no multipart upload is left open
// (the re-run aborts the staging uploads of this machine's dead process).
func TestS3KilledDuringMultipart(t *testing.T) {
	srv := startS3(t)
	t.Parallel()
	ctx := context.Background()
	bucket, err := srv.Bucket(ctx, "killed", true)
	if err != nil {
		t.Fatal(err)
	}
	big := nixBuild(t, "big", t.Name(), "--arg", "bigCount", "2", "--arg", "bigSize", "26000000")
	closure := closureOf(t, big)
	skFile, pk := keypair(t, "s3-killed-1")
	proxy := s3server.NewProxy(srv.Endpoint)
	defer proxy.Close()
	proxy.SetPartDelay(400 * time.Millisecond)

	cmd := exec.Command(binary, "push", "--json", "-j", "2", "--signing-key-file", skFile,
		"--to", "s3://"+bucket+"?scheme=http&"+s3PartSize+"&endpoint="+proxy.Endpoint, big)
	cmd.Env = append(noAWSEnv(), s3Env(t, srv)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var open []string
	for deadline := time.Now().Add(2 * time.Minute); len(open) == 0; {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no multipart upload was seen open within 2 minutes; stderr: %s", stderr.String())
		}
		select {
		case err := <-waitErr:
			t.Fatalf("the push ended (%v) before a multipart upload was seen open: %s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		open, _ = srv.OpenUploads(ctx, bucket)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-waitErr
	checkS3Cache(t, srv, bucket)
	if _, err := srv.Admin().StatObject(ctx, bucket, strings.TrimPrefix(big, "/nix/store/")[:32]+".narinfo", minio.StatObjectOptions{}); err == nil {
		t.Fatal("the root's narinfo is there although a part of its closure was being uploaded")
	}
	if open, _ = srv.OpenUploads(ctx, bucket); len(open) == 0 {
		t.Fatal("the kill left no open multipart upload to clean up: the test did not kill mid-upload")
	}
	t.Logf("killed with %d multipart uploads open: %v", len(open), open)

	r := s3cli(t, s3Env(t, srv), "push", "--json", "--signing-key-file", skFile, "--to", srv.URL(bucket, s3PartSize), big)
	if r.code != 0 {
		t.Fatalf("re-run failed (%d): %s", r.code, r.stderr)
	}
	res := final(t, r.stdout)
	if count(res, "pushed")+int(res["present"].(float64)) != len(closure) {
		t.Fatalf("re-run: %v", res)
	}
	if n := checkS3Cache(t, srv, bucket); n != len(closure) {
		t.Errorf("%d narinfos, want %d", n, len(closure))
	}
	noS3Leftovers(t, srv, bucket)
	if _, err := substitute(t, srv.HTTPURL(bucket, ""), pk, big); err != nil {
		t.Fatal(err)
	}
}

// TestS3BadInput: each way an S3 push goes wrong before anything is
// uploaded gives one line on stderr, the documented exit code (1: the
// service refused or could not be reached, the push may be retried; 2: the
// input is wrong), no secret, and an untouched bucket.
func TestS3BadInput(t *testing.T) {
	srv := startS3(t)
	t.Parallel()
	ctx := context.Background()
	bucket, err := srv.Bucket(ctx, "badinput", false)
	if err != nil {
		t.Fatal(err)
	}
	path := nixBuild(t, "single", t.Name())
	proxy := s3server.NewProxy(srv.Endpoint)
	defer proxy.Close()
	proxy.SetSkew(-20 * time.Minute)
	home := t.TempDir()
	base := []string{"HOME=" + home}
	keys := append(srv.Env(), base...)
	credFile := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(credFile, []byte("[default]\naws_access_key_id = "+srv.User+"\naws_secret_access_key = "+srv.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badManifest := writeManifest(t, t.TempDir(), map[string]any{
		"version": 1, "cache": map[string]any{"url": "s3://" + bucket + "?compression=xz"},
		"paths": []any{map[string]any{"storePath": path}},
	})
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"bucket missing", keys, []string{"--to", srv.URL("no-such-bucket", "")}, 1, `bucket "no-such-bucket" does not exist at ` + srv.Endpoint},
		{"wrong access key", append(base, "AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=whatever"), []string{"--to", srv.URL(bucket, "")}, 1, "does not know the access key from $AWS_ACCESS_KEY_ID"},
		{"wrong secret key", append(base, "AWS_ACCESS_KEY_ID="+srv.User, "AWS_SECRET_ACCESS_KEY=wrong-secret"), []string{"--to", srv.URL(bucket, "")}, 1, "refused the secret key from $AWS_SECRET_ACCESS_KEY"},
		{"wrong region", keys, []string{"--to", srv.URL(bucket, "region=eu-west-1")}, 1, "is in region us-east-1, not eu-west-1 (AuthorizationHeaderMalformed): add region=us-east-1 to the URL"},
		{"endpoint unreachable", keys, []string{"--to", "s3://" + bucket + "?endpoint=127.0.0.1:1&scheme=http"}, 1, "cannot reach 127.0.0.1:1"},
		{"clock skew", keys, []string{"--to", "s3://" + bucket + "?scheme=http&endpoint=" + proxy.Endpoint}, 1, "by more than 15 minutes"},
		{"no credentials", base, []string{"--to", srv.URL(bucket, "")}, 2, "no S3 credentials: set $AWS_ACCESS_KEY_ID"},
		{"credentials file missing", keys, []string{"--s3-credentials-file", filepath.Join(home, "none"), "--to", srv.URL(bucket, "")}, 2, "reading --s3-credentials-file " + filepath.Join(home, "none")},
		{"unknown parameter", keys, []string{"--to", srv.URL(bucket, "acl=public")}, 2, `unknown parameter "acl"`},
		{"manifest URL", keys, []string{badManifest}, 2, "cache.url: unusable s3:// URL: s3://" + bucket + ": the Nix setting compression is not taken from the URL"},
		// The credentials file wins over wrong keys in the environment.
		{"credentials file wins", append(base, "AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=whatever"), []string{"--dry-run", "--s3-credentials-file", credFile, "--to", srv.URL(bucket, "")}, 0, ""},
	} {
		args := append([]string{"push"}, tt.args...)
		if !strings.HasSuffix(tt.args[len(tt.args)-1], ".json") {
			args = append(args, path)
		}
		r := s3cli(t, tt.env, args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != tt.code || (tt.want != "" && (len(lines) != 1 || !strings.Contains(r.stderr, tt.want))) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit %d and one line saying %q", tt.name, r.code, r.stderr, tt.code, tt.want)
		}
		if strings.Contains(r.stderr+r.stdout, srv.Password) || strings.Contains(r.stderr, "wrong-secret") {
			t.Errorf("%s: a secret key is in the output", tt.name)
		}
	}
	if keys, _ := srv.Keys(ctx, bucket, ""); len(keys) != 0 {
		t.Errorf("failed pushes wrote %v", keys)
	}
}

// TestS3Queue: activate queues an S3 push that cannot happen (the server
// is down) and a later flush with the server up pushes it, with the
// credentials file handed on the command line as the NixOS unit does.
func TestS3Queue(t *testing.T) {
	srv := startS3(t)
	t.Parallel()
	ctx := context.Background()
	bucket, err := srv.Bucket(ctx, "queue", true)
	if err != nil {
		t.Fatal(err)
	}
	path := nixBuild(t, "lib", t.Name())
	credFile := filepath.Join(t.TempDir(), "s3-credentials")
	if err := os.WriteFile(credFile, []byte(fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", srv.User, srv.Password)), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	env := []string{"HOME=" + t.TempDir()}
	addr, err := s3server.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	m := writeManifest(t, t.TempDir(), map[string]any{
		"version": 1, "cache": map[string]any{"url": "s3://" + bucket + "?scheme=http&endpoint=" + addr},
		"paths": []any{map[string]any{"storePath": path}},
	})
	r := s3cli(t, env, "activate", "--mode", "foreground", "--timeout", "60s", "--state-dir", state, "--s3-credentials-file", credFile, m)
	if r.code != 0 || !strings.Contains(r.stderr, "cannot reach "+addr) || !strings.Contains(r.stderr, "stays queued") {
		t.Fatalf("activate with nothing at %s (%d): %s", addr, r.code, r.stderr)
	}
	// The endpoint comes up (a proxy to the server on that address).
	proxy, err := s3server.NewProxyOn(addr, srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	r = s3cli(t, env, "queue", "flush", "--state-dir", state, "--s3-credentials-file", credFile)
	if r.code != 0 {
		t.Fatalf("flush (%d): %s", r.code, r.stderr)
	}
	if n := checkS3Cache(t, srv, bucket); n != len(closureOf(t, path)) {
		t.Errorf("%d narinfos after the flush, want %d", n, len(closureOf(t, path)))
	}
}

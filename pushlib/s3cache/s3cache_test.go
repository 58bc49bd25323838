package s3cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/binarycache"
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/s3cache"
	"github.com/cachix-select/cachix-select/pushlib/store"
	"github.com/cachix-select/cachix-select/tests/s3server"
)

// server is the MinIO these tests share (nil when it is not built).
var server *s3server.Server

func TestMain(m *testing.M) {
	if s3server.Available() == "" {
		var err error
		if server, err = s3server.Start(""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

// partSize is the smallest S3 allows, so that multipart tests stay small.
const partSize = 5 << 20

// bucket makes a bucket for one test (skipping, or failing in CI, without MinIO).
func bucket(t *testing.T) string {
	t.Helper()
	s3server.Require(t)
	name, err := server.Bucket(context.Background(), t.Name(), false)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// open builds a cache on bucket with the server's root keys.
func open(t *testing.T, bucket string, mod func(*s3cache.Options)) *s3cache.Cache {
	t.Helper()
	return openURL(t, server.URL(bucket, ""), mod)
}

func openURL(t *testing.T, url string, mod func(*s3cache.Options)) *s3cache.Cache {
	t.Helper()
	opts := s3cache.Options{URL: url, PartSize: partSize, MaxRetries: 2,
		LookupEnv: lookup("AWS_ACCESS_KEY_ID", server.User, "AWS_SECRET_ACCESS_KEY", server.Password, "HOME", t.TempDir())}
	if mod != nil {
		mod(&opts)
	}
	c, err := s3cache.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func lookup(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fakeNAR is a store path whose "compressed NAR" is size deterministic
// bytes; the stream counts its calls and can be told to fail or change.
type fakeNAR struct {
	info  *store.PathInfo
	data  []byte
	calls atomic.Int32
	// failAfter makes the stream fail after this many bytes (0 = never).
	failAfter int
}

func newFakeNAR(name string, size int, seed byte) *fakeNAR {
	data := make([]byte, size)
	block := sha256.Sum256([]byte{seed})
	for i := 0; i < size; i += len(block) {
		copy(data[i:], block[:])
		block = sha256.Sum256(block[:])
	}
	h := sha256.Sum256(append([]byte(name), seed))
	narHash := sha256.Sum256(data)
	path := "/nix/store/" + nixbase32.EncodeToString(h[:20]) + "-" + name
	return &fakeNAR{info: &store.PathInfo{Path: path, NarHash: *nixhash.MustNewHash(nixhash.SHA256, narHash[:]), NarSize: uint64(size)}, data: data}
}

func (f *fakeNAR) stream(ctx context.Context, w io.Writer) (narstream.Result, error) {
	f.calls.Add(1)
	data := f.data
	written := 0
	for written < len(data) {
		if err := ctx.Err(); err != nil {
			return narstream.Result{}, err
		}
		if f.failAfter > 0 && written >= f.failAfter {
			return narstream.Result{}, errors.New("disk on fire")
		}
		n := min(64<<10, len(data)-written)
		if _, err := w.Write(data[written : written+n]); err != nil {
			return narstream.Result{}, err
		}
		written += n
	}
	sum := sha256.Sum256(data)
	return narstream.Result{NarHash: f.info.NarHash, NarSize: f.info.NarSize, FileHash: *nixhash.MustNewHash(nixhash.SHA256, sum[:]),
		FileSize: uint64(len(data)), Compression: narstream.DefaultCompression}, nil
}

// object reads a whole object.
func object(t *testing.T, bucket, key string) []byte {
	t.Helper()
	obj, err := server.Admin().GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return data
}

func noOpenUploads(t *testing.T, bucket string) {
	t.Helper()
	open, err := server.OpenUploads(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) > 0 {
		t.Errorf("multipart uploads left open: %v", open)
	}
}

// TestUploadThenCommit pushes a NAR that fits one part (one PUT) and one of
// several parts (a staging multipart upload copied to its content
// address): each is streamed once, nothing is visible before Commit, the
// objects are byte-exact with their content type, the narinfo names them,
// and no upload or staging object is left.
func TestUploadThenCommit(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	ctx := context.Background()
	c := open(t, b, nil)
	if got := object(t, b, "nix-cache-info"); !strings.Contains(string(got), "StoreDir: /nix/store") {
		t.Fatalf("nix-cache-info: %q", got)
	}
	for _, f := range []*fakeNAR{newFakeNAR("small", 100_000, 1), newFakeNAR("large", 3*partSize+12345, 2)} {
		missing, err := c.Missing(ctx, []string{f.info.Path})
		if err != nil || !missing[f.info.Path] {
			t.Fatalf("Missing before: %v %v", missing, err)
		}
		p, err := c.Upload(ctx, f.info, narstream.DefaultCompression, f.stream)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.calls.Load(); got != 1 {
			t.Errorf("%s: streamed %d times, want once", f.info.Path, got)
		}
		if missing, _ := c.Missing(ctx, []string{f.info.Path}); !missing[f.info.Path] {
			t.Fatal("narinfo visible before Commit")
		}
		if err := p.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if missing, _ := c.Missing(ctx, []string{f.info.Path}); missing[f.info.Path] {
			t.Fatal("narinfo missing after Commit")
		}
		text := object(t, b, store.HashPart(f.info.Path)+".narinfo")
		ni, err := narinfo.Parse(bytes.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := object(t, b, ni.URL); !bytes.Equal(got, f.data) || ni.FileSize != uint64(len(f.data)) {
			t.Errorf("%s: the NAR object differs (%d bytes, narinfo says %d)", ni.URL, len(got), ni.FileSize)
		}
		if st, err := server.Admin().StatObject(ctx, b, ni.URL, minio.StatObjectOptions{}); err != nil || st.ContentType != "application/x-nix-nar" {
			t.Errorf("%s: content type %q, %v", ni.URL, st.ContentType, err)
		}
	}
	noLeftovers(t, b)

	// The large NAR again, from another writer: the object stays whole.
	again := open(t, b, nil)
	f := newFakeNAR("large", 3*partSize+12345, 2)
	p, err := again.Upload(ctx, f.info, narstream.DefaultCompression, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := object(t, b, binarycache.NarName(p.Result(), narstream.DefaultCompression)); !bytes.Equal(got, f.data) {
		t.Error("the NAR object changed")
	}
	noLeftovers(t, b)
}

// noLeftovers asserts that no multipart upload is open and nothing is staged.
func noLeftovers(t *testing.T, bucket string) {
	t.Helper()
	noOpenUploads(t, bucket)
	if keys, _ := server.Keys(context.Background(), bucket, "staging/"); len(keys) != 0 {
		t.Errorf("staging objects left: %v", keys)
	}
}

// TestFailedMultipartIsAborted: a stream failing after some parts leaves
// no object, no staging object and no open upload.
func TestFailedMultipartIsAborted(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	c := open(t, b, nil)
	f := newFakeNAR("fails", 4*partSize, 3)
	f.failAfter = 2*partSize + 1
	if _, err := c.Upload(context.Background(), f.info, narstream.DefaultCompression, f.stream); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("want the stream's error, got %v", err)
	}
	noLeftovers(t, b)
	if keys, _ := server.Keys(context.Background(), b, "nar/"); len(keys) != 0 {
		t.Errorf("objects left: %v", keys)
	}
}

// TestAbandonedUploads: a push's first upload cleans what killed pushes of
// this machine left (their process is gone); what another machine is
// staging is left alone unless older than StaleUploadAge; uploads that
// are not this cache's NARs are never touched.
func TestAbandonedUploads(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	ctx := context.Background()
	core := &minio.Core{Client: server.Admin()}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	h := strings.Repeat("0", 52)
	tag := s3cache.MachineTag()
	name := func(machine string, pid int, r string) string {
		return fmt.Sprintf("staging/%s-%s-%d-%s.nar.zst", h, machine, pid, r)
	}
	deadUpload, liveUpload, otherUpload := name(tag, dead.Process.Pid, "aaaa"), name(tag, os.Getpid(), "bbbb"), name("0badc0de", 1, "cccc")
	deadObject, otherObject := name(tag, dead.Process.Pid, "dddd"), name("0badc0de", 1, "eeee")
	nixUpload := fmt.Sprintf("nar/%x.nar.xz", sha256.Sum256([]byte("nix")))
	for _, k := range []string{deadUpload, liveUpload, otherUpload, nixUpload, "unrelated/file"} {
		if _, err := core.NewMultipartUpload(ctx, b, k, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{deadObject, otherObject} {
		if _, err := server.Admin().PutObject(ctx, b, k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() string {
		open, _ := server.OpenUploads(ctx, b)
		staged, _ := server.Keys(ctx, b, "staging/")
		sort.Strings(open)
		return "uploads " + strings.Join(open, " ") + "; objects " + strings.Join(staged, " ")
	}
	upload := func(c *s3cache.Cache) {
		f := newFakeNAR(fmt.Sprint("tiny", c), 10, 6)
		if _, err := c.Upload(ctx, f.info, narstream.DefaultCompression, f.stream); err != nil {
			t.Fatal(err)
		}
	}
	upload(open(t, b, nil))
	want := "uploads " + strings.Join(sorted(liveUpload, otherUpload, nixUpload, "unrelated/file"), " ") + "; objects " + otherObject
	if got := state(); got != want {
		t.Errorf("after the first push:\n got %s\nwant %s", got, want)
	}
	// A push that counts everything older than a millisecond as stale
	// (its own process's staging too: age decides, whoever the owner).
	upload(open(t, b, func(o *s3cache.Options) { o.StaleUploadAge = time.Millisecond }))
	want = "uploads unrelated/file; objects "
	if got := state(); got != want {
		t.Errorf("after the stale clean-up:\n got %s\nwant %s", got, want)
	}
}

func sorted(s ...string) []string { sort.Strings(s); return s }

// TestConcurrentWritersOfOneNAR: four writers upload the same large NAR at
// once (separate clients, as on separate machines), with buffers so few
// that they wait for each other; all succeed, the object is whole, and no
// upload stays open.
func TestConcurrentWritersOfOneNAR(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	var data []byte
	var url string
	var mu sync.Mutex
	for i := range errs {
		c := open(t, b, func(o *s3cache.Options) { o.MaxBuffers = 2 })
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := newFakeNAR("shared", 4*partSize+99, 7)
			p, err := c.Upload(ctx, f.info, narstream.DefaultCompression, f.stream)
			if err == nil {
				err = p.Commit(ctx)
			}
			errs[i] = err
			mu.Lock()
			data = f.data
			url = fmt.Sprintf("nar/%s.nar.zst", p.Result().FileHashHex())
			mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("concurrent uploads did not finish within 2 minutes")
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if got := object(t, b, url); !bytes.Equal(got, data) {
		t.Errorf("the shared NAR object differs (%d bytes, want %d)", len(got), len(data))
	}
	noLeftovers(t, b)
}

// TestMissingManyPaths asks about 2,000 present and 40 absent paths of a
// bucket holding 2,100 narinfos: the answer is exact, and it costs a few
// listing pages instead of 2,040 HEADs; 10 paths cost 10 HEADs.
func TestMissingManyPaths(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	ctx := context.Background()
	paths := putNarinfos(t, b, 2100)
	absent := make([]string, 40)
	for i := range absent {
		absent[i] = newFakeNAR(fmt.Sprint("absent", i), 1, 9).info.Path
	}
	ask := append(append([]string{}, paths[:2000]...), absent...)
	c := open(t, b, nil)
	before := s3cache.Requests(c)
	missing, err := c.Missing(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	after := s3cache.Requests(c)
	if len(missing) != len(absent) {
		t.Errorf("%d missing, want %d", len(missing), len(absent))
	}
	for _, p := range absent {
		if !missing[p] {
			t.Errorf("%s not reported missing", p)
		}
	}
	gets, heads := after["GET"]-before["GET"], after["HEAD"]-before["HEAD"]
	t.Logf("2,040 paths: %d GET (listing pages), %d HEAD", gets, heads)
	if gets > 4 || heads > 100 {
		t.Errorf("asking about 2,040 paths took %d listing pages and %d HEADs", gets, heads)
	}
	before = s3cache.Requests(c)
	if missing, err := c.Missing(ctx, append(paths[:5:5], absent[:5]...)); err != nil || len(missing) != 5 {
		t.Fatalf("10 paths: %v %v", missing, err)
	}
	after = s3cache.Requests(c)
	if after["HEAD"]-before["HEAD"] != 10 || after["GET"] != before["GET"] {
		t.Errorf("10 paths: %v then %v, want 10 HEADs", before, after)
	}
}

// putNarinfos writes n tiny narinfo objects, 16 at a time.
func putNarinfos(t testing.TB, b string, n int) []string {
	t.Helper()
	paths := make([]string, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range paths {
		paths[i] = newFakeNAR(fmt.Sprint("p", i), 1, 8).info.Path
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := "StorePath: " + paths[i] + "\n"
			if _, err := server.Admin().PutObject(context.Background(), b, store.HashPart(paths[i])+".narinfo",
				strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		t.Fatal(err)
	}
	return paths
}

// BenchmarkMissing2000 measures the two ways of asking about 2,000
// present paths in a bucket of 2,000 narinfos: one HEAD each
// (HeadConcurrency at a time) or a listing of the narinfo keys; the ratio
// sets ListPageCost: go test -run X -bench Missing ./pushlib/s3cache
func BenchmarkMissing2000(b *testing.B) {
	s3server.Require(b)
	name, err := server.Bucket(context.Background(), "bench-missing", false)
	if err != nil {
		b.Fatal(err)
	}
	paths := putNarinfos(b, name, 2000)
	for _, strategy := range []string{"list", "head"} {
		c, err := s3cache.New(s3cache.Options{URL: server.URL(name, ""),
			LookupEnv: lookup("AWS_ACCESS_KEY_ID", server.User, "AWS_SECRET_ACCESS_KEY", server.Password)})
		if err != nil {
			b.Fatal(err)
		}
		s3cache.SetStrategy(c, strategy)
		b.Run(strategy, func(b *testing.B) {
			before := s3cache.Requests(c)
			for range b.N {
				if m, err := c.Missing(context.Background(), paths); err != nil || len(m) != 0 {
					b.Fatal(m, err)
				}
			}
			after := s3cache.Requests(c)
			b.ReportMetric(float64(after["GET"]+after["HEAD"]-before["GET"]-before["HEAD"])/float64(b.N), "requests/op")
		})
	}
}

// TestOpenErrors: the failures a user meets first, each a one-line error
// with the sentinel that decides retrying and the exit code.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	b := bucket(t)
	proxy := s3server.NewProxy(server.Endpoint)
	defer proxy.Close()
	for _, tt := range []struct {
		name     string
		url      string
		env      []string
		skew     time.Duration
		sentinel error
		want     string
	}{
		{"bucket missing", server.URL("no-such-bucket-x", ""), nil, 0, backend.ErrCacheNotFound, `bucket "no-such-bucket-x" does not exist`},
		{"unknown access key", server.URL(b, ""), []string{"AWS_ACCESS_KEY_ID", "nobody"}, 0, backend.ErrUnauthorized, "does not know the access key from $AWS_ACCESS_KEY_ID"},
		{"wrong secret", server.URL(b, ""), []string{"AWS_SECRET_ACCESS_KEY", "wrong-secret"}, 0, backend.ErrUnauthorized, "refused the secret key from $AWS_SECRET_ACCESS_KEY"},
		{"wrong region", server.URL(b, "region=eu-west-1"), nil, 0, s3cache.ErrWrongRegion, "is in region us-east-1, not eu-west-1"},
		{"wrong session token", server.URL(b, ""), []string{"AWS_SESSION_TOKEN", "not-a-session-token"}, 0, backend.ErrUnauthorized, "refused the session token from $AWS_SESSION_TOKEN"},
		{"unreachable", "s3://" + b + "?endpoint=127.0.0.1:1&scheme=http", nil, 0, s3cache.ErrUnreachable, "cannot reach 127.0.0.1:1"},
		{"clock skew", "s3://" + b + "?scheme=http&endpoint=" + proxy.Endpoint, nil, 20 * time.Minute, s3cache.ErrClockSkew, "differs from " + proxy.Endpoint + "'s by more than 15 minutes"},
	} {
		env := map[string]string{"AWS_ACCESS_KEY_ID": server.User, "AWS_SECRET_ACCESS_KEY": server.Password}
		for i := 0; i+1 < len(tt.env); i += 2 {
			env[tt.env[i]] = tt.env[i+1]
		}
		c, err := s3cache.New(s3cache.Options{URL: tt.url, MaxRetries: 2,
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		if err != nil {
			t.Fatal(err)
		}
		proxy.SetSkew(tt.skew)
		_, err = c.Open(context.Background())
		if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want %v saying %q", tt.name, err, tt.sentinel, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), server.Password) {
			t.Errorf("%s: the error shows the secret key", tt.name)
		}
		if (tt.sentinel == s3cache.ErrWrongRegion || tt.sentinel == s3cache.ErrClockSkew) && !backend.Permanent(err) {
			t.Errorf("%s: not permanent", tt.name)
		}
	}
	// A bucket serving another store is refused.
	if _, err := server.Admin().PutObject(context.Background(), b, "nix-cache-info", strings.NewReader("StoreDir: /gnu/store\n"), 21, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	c, _ := s3cache.New(s3cache.Options{URL: server.URL(b, ""), LookupEnv: lookup("AWS_ACCESS_KEY_ID", server.User, "AWS_SECRET_ACCESS_KEY", server.Password)})
	if _, err := c.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "serves store /gnu/store") {
		t.Errorf("other store: %v", err)
	}
}

// TestReadOnlyAndPrefix: a dry run's Open writes nothing, even without
// keys (anonymous); a cache under a prefix keeps every key under it.
func TestReadOnlyAndPrefix(t *testing.T) {
	t.Parallel()
	s3server.Require(t)
	ctx := context.Background()
	b, err := server.Bucket(ctx, t.Name(), true)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := s3cache.New(s3cache.Options{URL: server.URL(b, ""), ReadOnly: true, LookupEnv: lookup("HOME", t.TempDir())})
	if err == nil && !strings.Contains(ro.CredentialsSource(), "anonymous") {
		t.Errorf("credentials from %s", ro.CredentialsSource())
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := server.Keys(ctx, b, ""); len(keys) != 0 {
		t.Fatalf("a read-only Open wrote %v", keys)
	}
	// Anonymous reads of a private bucket are refused, and the error says why.
	private := bucket(t)
	ro, err = s3cache.New(s3cache.Options{URL: server.URL(private, ""), ReadOnly: true, LookupEnv: lookup("HOME", t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Open(ctx); !errors.Is(err, backend.ErrUnauthorized) || !strings.Contains(err.Error(), "denied anonymous access") {
		t.Errorf("anonymous Open of a private bucket: %v", err)
	}
	c := openURL(t, server.URL(b, "prefix=team/nix"), nil)
	f := newFakeNAR("prefixed", 1000, 10)
	p, err := c.Upload(ctx, f.info, narstream.DefaultCompression, f.stream)
	if err == nil {
		err = p.Commit(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := server.Keys(ctx, b, "")
	for _, k := range keys {
		if !strings.HasPrefix(k, "team/nix/") {
			t.Errorf("key %s outside the prefix", k)
		}
	}
	if len(keys) != 3 {
		t.Errorf("keys %v, want nix-cache-info, a narinfo and a NAR", keys)
	}
}

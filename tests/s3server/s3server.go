// Package s3server runs the real S3 server of the tests (MinIO, built and
// started by tests/lib/s3-server.sh) on the loopback interface, and gives
// the tests an admin client for it: buckets, bucket policies, listings of
// unfinished multipart uploads.
package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running MinIO.
type Server struct {
	// Endpoint is 127.0.0.1:PORT.
	Endpoint string
	// Region is the region the server signs for.
	Region string
	// User and Password are the root credentials (random per server).
	User, Password string
	dir            string
	admin          *minio.Client
}

// script is tests/lib/s3-server.sh.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "lib", "s3-server.sh")
}

// Binary is where the MinIO binary is, and whether it is there.
func Binary() (string, bool) {
	out, err := exec.Command(script(), "path").Output()
	if err != nil {
		return "", false
	}
	bin := strings.TrimSpace(string(out))
	fi, err := os.Stat(bin)
	return bin, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Available says why S3 tests cannot run ("" when they can).
func Available() string {
	bin, ok := Binary()
	if !ok {
		return "the S3 test server (MinIO) is not built at " + bin + ": run tests/lib/s3-server.sh build (a few minutes, once)"
	}
	return ""
}

// Require skips the test when the server binary is missing, or fails it
// in CI (CI=true), where .ci/run builds it.
func Require(t testing.TB) {
	t.Helper()
	if why := Available(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why + " (.ci/run builds it in CI)")
		}
		t.Skip("SKIP: " + why)
	}
}

// Start runs a server for region ("" = us-east-1) with its data in a new
// temporary directory. A port is picked free; if another process takes it
// first, the next one is tried.
func Start(region string) (*Server, error) {
	if region == "" {
		region = "us-east-1"
	}
	dir, err := os.MkdirTemp("", "cachix-select-s3-")
	if err != nil {
		return nil, err
	}
	s := &Server{Region: region, User: "admin-" + random(4), Password: random(16), dir: dir}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(script(), "start", dir, strconv.Itoa(port), region, strconv.Itoa(os.Getpid()))
		cmd.Env = append(os.Environ(), "S3_SERVER_USER="+s.User, "S3_SERVER_PASSWORD="+s.Password)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			lastErr = fmt.Errorf("starting MinIO: %v: %s", err, stderr.String())
			continue
		}
		s.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
		s.admin, err = minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.User, s.Password, ""), Region: region})
		if err != nil {
			s.Stop()
			return nil, err
		}
		return s, nil
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// Stop ends the server (by its PID) and removes its data.
func (s *Server) Stop() {
	_ = exec.Command(script(), "stop", s.dir).Run()
	os.RemoveAll(s.dir)
}

// Admin is a client with the root credentials.
func (s *Server) Admin() *minio.Client { return s.admin }

// Bucket creates a bucket with a unique name from base; public makes it
// readable by anyone (GetObject), as a binary cache served over plain
// HTTP must be.
func (s *Server) Bucket(ctx context.Context, base string, public bool) (string, error) {
	name := strings.ToLower(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, base))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + random(4)
	if err := s.admin.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return "", err
	}
	if public {
		policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},` +
			`"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + name + `/*"]}]}`
		if err := s.admin.SetBucketPolicy(ctx, name, policy); err != nil {
			return "", err
		}
	}
	return name, nil
}

// URL is the s3:// URL of bucket on this server (extra: more parameters).
func (s *Server) URL(bucket, extra string) string {
	u := "s3://" + bucket + "?endpoint=" + s.Endpoint + "&scheme=http"
	if s.Region != "us-east-1" {
		u += "&region=" + s.Region
	}
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// HTTPURL is the plain-HTTP binary cache URL of a public bucket.
func (s *Server) HTTPURL(bucket, prefix string) string {
	return "http://" + s.Endpoint + "/" + bucket + strings.TrimSuffix("/"+prefix, "/")
}

// Env is the environment that gives cachix-select the root credentials.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.User, "AWS_SECRET_ACCESS_KEY=" + s.Password}
}

// OpenUploads lists the unfinished multipart uploads in bucket.
func (s *Server) OpenUploads(ctx context.Context, bucket string) ([]string, error) {
	var keys []string
	for u := range s.admin.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			return nil, u.Err
		}
		keys = append(keys, u.Key)
	}
	return keys, nil
}

// Keys lists the object keys in bucket under prefix.
func (s *Server) Keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	for o := range s.admin.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Proxy is a reverse proxy on 127.0.0.1 in front of a server: it counts
// the requests that pass, by method; it can shift the X-Amz-Date they
// carry, which is how a client with a wrong clock looks to the server
// (MinIO checks that header against its own clock before anything else),
// and slow down part uploads.
type Proxy struct {
	// URL is http://127.0.0.1:PORT; Endpoint is 127.0.0.1:PORT.
	URL, Endpoint string

	srv       *httptest.Server
	mu        sync.Mutex
	n         map[string]int
	skew      time.Duration
	partDelay time.Duration
}

// NewProxy starts a proxy to the server at endpoint (host:port).
func NewProxy(endpoint string) *Proxy {
	p, err := NewProxyOn("127.0.0.1:0", endpoint)
	if err != nil {
		panic(err) // a loopback port is always there to take
	}
	return p
}

// FreeAddr is a loopback address nothing listens on (yet).
func FreeAddr() (string, error) {
	port, err := freePort()
	return fmt.Sprintf("127.0.0.1:%d", port), err
}

// NewProxyOn starts a proxy listening on addr to the server at endpoint.
func NewProxyOn(addr, endpoint string) (*Proxy, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{n: map[string]int{}}
	target := &url.URL{Scheme: "http", Host: endpoint}
	rp := httputil.NewSingleHostReverseProxy(target)
	// A client killed mid-request is what some tests do: not worth a log line.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.Director = func(r *http.Request) {
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		p.mu.Lock()
		skew, delay := p.skew, p.partDelay
		p.n[r.Method]++
		p.mu.Unlock()
		if delay > 0 && r.Method == http.MethodPut && r.URL.Query().Get("partNumber") != "" {
			time.Sleep(delay)
		}
		if d, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date")); err == nil && skew != 0 {
			r.Header.Set("X-Amz-Date", d.Add(skew).UTC().Format("20060102T150405Z"))
		}
	}
	p.srv = httptest.NewUnstartedServer(rp)
	p.srv.Listener.Close()
	p.srv.Listener = l
	p.srv.Start()
	p.URL = p.srv.URL
	p.Endpoint = strings.TrimPrefix(p.srv.URL, "http://")
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// SetSkew shifts the X-Amz-Date of every later request by d.
func (p *Proxy) SetSkew(d time.Duration) {
	p.mu.Lock()
	p.skew = d
	p.mu.Unlock()
}

// SetPartDelay holds every multipart part upload for d before passing it
// on, so that a test can act while an upload is open.
func (p *Proxy) SetPartDelay(d time.Duration) {
	p.mu.Lock()
	p.partDelay = d
	p.mu.Unlock()
}

// Counts returns the requests seen so far by method, and resets them.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.n
	p.n = map[string]int{}
	return out
}

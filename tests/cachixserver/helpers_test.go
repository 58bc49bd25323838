package cachixserver_test

import (
	"bytes"
	"crypto/md5" //nolint:gosec // Content-MD5
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/ulikunitz/xz"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// startServer starts a test server and stops it when the test ends.
func startServer(t *testing.T, cfg cachixserver.Config) *cachixserver.Server {
	t.Helper()
	srv, err := cachixserver.Start(cfg)
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing server: %v", err)
		}
	})
	return srv
}

// narOfFile builds the NAR of a single regular file with go-nix's writer.
func narOfFile(t *testing.T, contents []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	nw, err := nar.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: int64(len(contents))}); err != nil {
		t.Fatal(err)
	}
	if _, err := nw.Write(contents); err != nil {
		t.Fatal(err)
	}
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressZstd compresses b with klauspost's zstd encoder.
func compressZstd(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// compressXZ compresses b with ulikunitz's xz encoder.
func compressXZ(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomHash returns a random 32-character nix-base32 hash part.
func randomHash(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return nixbase32.EncodeToString(b)
}

// testPath is a synthetic store path with its NAR, as a client would push it.
type testPath struct {
	hash, name string
	nar        []byte
	compressed []byte
	comp       string   // multipart query value: zst or xz
	refs       []string // base names, sorted
	deriver    string
}

// newTestPath makes a path whose NAR is one file with the given contents,
// compressed with zstd, referring to refs (base names).
func newTestPath(t *testing.T, name, contents string, refs ...string) testPath {
	t.Helper()
	n := narOfFile(t, []byte(contents))
	refs = append([]string(nil), refs...)
	sort.Strings(refs)
	return testPath{
		hash: randomHash(t), name: name, nar: n, compressed: compressZstd(t, n),
		comp: "zst", refs: refs, deriver: "unknown-deriver",
	}
}

// base is the path's base name <hash>-<name>.
func (p testPath) base() string { return p.hash + "-" + p.name }

// path is the full store path.
func (p testPath) path() string { return "/nix/store/" + p.base() }

// narHash is sha256:<nix32> of the NAR.
func (p testPath) narHash() string {
	s := sha256.Sum256(p.nar)
	return "sha256:" + nixbase32.EncodeToString(s[:])
}

// fileHash is the lower-case hex SHA-256 of the compressed bytes.
func (p testPath) fileHash() string {
	s := sha256.Sum256(p.compressed)
	return hex.EncodeToString(s[:])
}

// fingerprint is Nix's "1;" fingerprint, computed independently here.
func (p testPath) fingerprint() string {
	full := make([]string, len(p.refs))
	for i, r := range p.refs {
		full[i] = "/nix/store/" + r
	}
	return "1;" + p.path() + ";" + p.narHash() + ";" + itoa(len(p.nar)) + ";" + strings.Join(full, ",")
}

// create is a correct narInfoCreate object for the path.
func (p testPath) create(sig any) map[string]any {
	refs := append([]string{}, p.refs...)
	return map[string]any{
		"cStoreHash":   p.hash,
		"cStoreSuffix": p.name,
		"cNarHash":     p.narHash(),
		"cNarSize":     len(p.nar),
		"cFileHash":    p.fileHash(),
		"cFileSize":    len(p.compressed),
		"cReferences":  refs,
		"cDeriver":     p.deriver,
		"cSig":         sig,
	}
}

// itoa formats an int.
func itoa(n int) string { return strconv.Itoa(n) }

// mustJSON marshals v or panics (test data only).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// client talks to the server as a test client with one token.
type client struct {
	t     *testing.T
	base  string // server URL (no /api/v1)
	token string // "" sends no Authorization header
}

// response is what a request returned.
type response struct {
	status int
	body   string
	header http.Header
}

// do sends a request; path is relative to the server URL unless it is a
// full URL. A body of type []byte is sent raw, anything else as JSON.
// hdr are extra header name/value pairs.
func (c client) do(method, path string, body any, hdr ...string) response {
	c.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(b))
		contentType = "application/json;charset=utf-8"
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// want fails the test unless the response has the given status.
func (r response) want(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// decode unmarshals the response body.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
}

// upload is a multipart upload in progress on the client side.
type upload struct {
	cache    string
	narID    string
	uploadID string
	etags    []string
}

// api is the API path of cache.
func api(cache string) string { return "/api/v1/cache/" + cache }

// start creates a multipart upload.
func (c client) start(cache, comp string) *upload {
	c.t.Helper()
	var out struct {
		NarID    string `json:"narId"`
		UploadID string `json:"uploadId"`
	}
	c.do("POST", api(cache)+"/multipart-nar?compression="+comp, nil).want(c.t, 200).decode(c.t, &out)
	if out.NarID == "" || out.UploadID == "" {
		c.t.Fatalf("create returned %+v", out)
	}
	return &upload{cache: cache, narID: out.NarID, uploadID: out.UploadID}
}

// md5b64 is the base64 Content-MD5 of b.
func md5b64(b []byte) string {
	s := md5.Sum(b) //nolint:gosec
	return base64.StdEncoding.EncodeToString(s[:])
}

// presign asks for the upload URL of part n.
func (c client) presign(u *upload, n int, sum string) string {
	c.t.Helper()
	var out struct {
		UploadURL string `json:"uploadUrl"`
	}
	c.do("POST", api(u.cache)+"/multipart-nar/"+u.narID+"?uploadId="+u.uploadID+"&partNumber="+itoa(n),
		map[string]string{"contentMD5": sum}).want(c.t, 200).decode(c.t, &out)
	if !strings.HasPrefix(out.UploadURL, "http") {
		c.t.Fatalf("uploadUrl %q", out.UploadURL)
	}
	return out.UploadURL
}

// putPart presigns and PUTs one part (without Authorization, as to S3)
// and records its ETag.
func (c client) putPart(u *upload, n int, data []byte) {
	c.t.Helper()
	sum := md5b64(data)
	url := c.presign(u, n, sum)
	r := client{t: c.t}.do("PUT", url, data, "Content-MD5", sum, "Content-Type", "application/octet-stream").want(c.t, 200)
	etag := r.header.Get("ETag")
	if etag == "" {
		c.t.Fatal("PUT returned no ETag")
	}
	for len(u.etags) < n {
		u.etags = append(u.etags, "")
	}
	u.etags[n-1] = etag
}

// putAll uploads data in parts of partSize (0: one part).
func (c client) putAll(u *upload, data []byte, partSize int) {
	c.t.Helper()
	if partSize <= 0 {
		partSize = len(data)
	}
	for i, n := 0, 1; i < len(data); i, n = i+partSize, n+1 {
		c.putPart(u, n, data[i:min(i+partSize, len(data))])
	}
}

// completeBody is a correct completion body for u.
func (u *upload) completeBody(create map[string]any) map[string]any {
	parts := make([]any, len(u.etags))
	for i, e := range u.etags {
		parts[i] = map[string]any{"partNumber": i + 1, "eTag": e}
	}
	return map[string]any{"parts": parts, "narInfoCreate": create}
}

// complete posts a completion body.
func (c client) complete(u *upload, body any) response {
	c.t.Helper()
	return c.do("POST", api(u.cache)+"/multipart-nar/"+u.narID+"/complete?uploadId="+u.uploadID, body)
}

// push uploads p in one part and completes it with signature sig (nil on
// managed caches), requiring success.
func (c client) push(cache string, p testPath, sig any) {
	c.t.Helper()
	u := c.start(cache, p.comp)
	c.putAll(u, p.compressed, 0)
	c.complete(u, u.completeBody(p.create(sig))).want(c.t, 200)
}

// missing runs the bulk query.
func (c client) missing(cache string, hashes ...string) []string {
	c.t.Helper()
	var out []string
	if hashes == nil {
		hashes = []string{}
	}
	c.do("POST", api(cache)+"/narinfo", hashes).want(c.t, 200).decode(c.t, &out)
	return out
}

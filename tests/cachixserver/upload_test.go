package cachixserver_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// TestManagedUploadServesSignedNarinfo pushes two paths (one referring to
// the other) to a managed cache and checks the served narinfo, its
// server signature and the NAR bytes.
func TestManagedUploadServesSignedNarinfo(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{"zst", "xz"} {
		t.Run(comp, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
				{Name: "managed", WriteTokens: []string{"W"}, PreferredCompression: "XZ"},
			}})
			c := client{t: t, base: srv.URL(), token: "W"}

			dep := newTestPath(t, "dep-1.0", "dependency\n")
			top := newTestPath(t, "top-2.0", "top level\n", dep.base())
			top.refs = append(top.refs, top.base()) // a self-reference too
			sort.Strings(top.refs)
			top.deriver = randomHash(t) + "-top-2.0.drv"
			for _, p := range []*testPath{&dep, &top} {
				if comp == "xz" {
					p.compressed, p.comp = compressXZ(t, p.nar), "xz"
				}
			}

			if got := c.missing("managed", dep.hash, top.hash); len(got) != 2 {
				t.Fatalf("missing before push = %v, want both", got)
			}
			c.push("managed", dep, nil)
			c.push("managed", top, nil)
			if got := c.missing("managed", dep.hash, top.hash); len(got) != 0 {
				t.Fatalf("missing after push = %v, want none", got)
			}

			// Cache info: exactly the seven fields, uri = binary-cache URL.
			var info map[string]any
			c.do("GET", api("managed"), nil).want(t, 200).decode(t, &info)
			if len(info) != 7 {
				t.Errorf("cache info has %d fields: %v", len(info), info)
			}
			if info["uri"] != srv.BinaryCacheURL("managed") || info["permission"] != "Write" ||
				info["preferredCompressionMethod"] != "XZ" || info["isPublic"] != false {
				t.Errorf("cache info = %v", info)
			}
			keys, _ := info["publicSigningKeys"].([]any)
			if len(keys) != 1 || keys[0] != srv.ManagedPublicKey("managed") ||
				!strings.HasPrefix(srv.ManagedPublicKey("managed"), "managed.cachix.org-1:") {
				t.Errorf("publicSigningKeys = %v, managed key %q", keys, srv.ManagedPublicKey("managed"))
			}

			// The narinfo as Nix reads it, through the binary-cache view.
			r := c.do("GET", srv.BinaryCacheURL("managed")+"/"+top.hash+".narinfo", nil).want(t, 200)
			if ct := r.header.Get("Content-Type"); ct != "text/x-nix-narinfo" {
				t.Errorf("Content-Type %q", ct)
			}
			ni, err := narinfo.Parse(strings.NewReader(r.body))
			if err != nil {
				t.Fatalf("parsing narinfo %q: %v", r.body, err)
			}
			wantComp := map[string]string{"zst": "zstd", "xz": "xz"}[comp]
			if ni.StorePath != top.path() || ni.NarSize != uint64(len(top.nar)) ||
				ni.NarHash.String() != top.narHash() || ni.FileSize != uint64(len(top.compressed)) ||
				ni.Compression != wantComp || ni.URL != "nar/"+top.fileHash()+".nar."+comp ||
				ni.Deriver != top.deriver || strings.Join(ni.References, " ") != strings.Join(top.refs, " ") {
				t.Errorf("narinfo does not match the upload:\n%s", r.body)
			}
			if !strings.Contains(r.body, "FileHash: sha256:"+top.fileHash()+"\n") {
				t.Errorf("FileHash is not sha256:<hex>:\n%s", r.body)
			}
			pub, err := signature.ParsePublicKey(srv.ManagedPublicKey("managed"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ni.Signatures) != 1 || !signature.VerifyFirst(ni.Fingerprint(), ni.Signatures, []signature.PublicKey{pub}) {
				t.Errorf("server signature does not verify: %v", ni.Signatures)
			}
			if ni.Fingerprint() != top.fingerprint() {
				t.Errorf("fingerprint %q, want %q", ni.Fingerprint(), top.fingerprint())
			}

			// HEAD on the API, JSON form, nix-cache-info.
			c.do("HEAD", api("managed")+"/"+top.hash+".narinfo", nil).want(t, 200)
			c.do("HEAD", api("managed")+"/"+randomHash(t)+".narinfo", nil).want(t, 404)
			var j map[string]any
			c.do("GET", api("managed")+"/"+top.hash+".narinfo", nil, "Accept", "application/json").want(t, 200).decode(t, &j)
			if j["storePath"] != top.path() || j["narHash"] != top.narHash() {
				t.Errorf("JSON narinfo = %v", j)
			}
			ci := c.do("GET", srv.BinaryCacheURL("managed")+"/nix-cache-info", nil).want(t, 200).body
			if ci != "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n" {
				t.Errorf("nix-cache-info = %q", ci)
			}

			// The NAR: exactly the uploaded bytes, decompressing to the NAR.
			nb := c.do("GET", srv.BinaryCacheURL("managed")+"/"+ni.URL, nil).want(t, 200).body
			if !bytes.Equal([]byte(nb), top.compressed) {
				t.Fatalf("served NAR differs from the upload (%d vs %d bytes)", len(nb), len(top.compressed))
			}
			// The API's nar endpoint redirects there.
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, err := http.NewRequest("GET", srv.URL()+api("managed")+"/"+ni.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer W")
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 302 || resp.Header.Get("Location") != srv.BinaryCacheURL("managed")+"/"+ni.URL {
				t.Errorf("API nar: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}

			st := srv.Stats()
			if st.UploadsCompleted != 2 || st.UploadsStarted != 2 || st.PartsUploaded != 2 ||
				st.PutBytes != int64(len(dep.compressed)+len(top.compressed)) || len(st.Rejections) != 0 ||
				st.BulkQueryCalls != 2 || st.BulkQueryHashes != 4 || st.NarDownloads != 1 {
				t.Errorf("stats = %+v", st)
			}
			if paths := srv.StorePaths("managed"); len(paths) != 2 || !paths[0].Complete || !paths[1].Complete {
				t.Errorf("StorePaths = %+v", paths)
			}
		})
	}
}

// TestMultipartUploadOnDisk uploads a NAR in three parts with the default
// 5 MiB minimum part size and a data directory, and checks the data
// directory is used and cleaned up.
func TestMultipartUploadOnDisk(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	srv, err := cachixserver.Start(cachixserver.Config{
		DataDir: dataDir,
		Caches:  []cachixserver.CacheConfig{{Name: "disk", WriteTokens: []string{"W"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := client{t: t, base: srv.URL(), token: "W"}

	payload := make([]byte, 12<<20)
	var seed [32]byte
	_, _ = mrand.NewChaCha8(seed).Read(payload) // incompressible, deterministic
	p := newTestPath(t, "big", string(payload))
	if len(p.compressed) <= 10<<20 {
		t.Fatalf("payload compressed to %d bytes, too few for three parts", len(p.compressed))
	}

	u := c.start("disk", "zst")
	c.putAll(u, p.compressed, 5<<20)
	if len(u.etags) != 3 {
		t.Fatalf("uploaded %d parts, want 3", len(u.etags))
	}
	files := 0
	_ = filepath.Walk(dataDir, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			files++
		}
		return nil
	})
	if files != 3 {
		t.Errorf("%d files in the data directory, want 3 parts", files)
	}
	c.complete(u, u.completeBody(p.create(nil))).want(t, 200)
	got := c.do("GET", srv.BinaryCacheURL("disk")+"/nar/"+p.fileHash()+".nar.zst", nil).want(t, 200).body
	if sha256.Sum256([]byte(got)) != sha256.Sum256(p.compressed) {
		t.Error("NAR served from disk differs from the upload")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil || len(entries) != 0 {
		t.Errorf("data directory not cleaned up: %v %v", entries, err)
	}
}

// TestSelfSignedCache checks a valid client signature is accepted and
// served under the cache's key name, and bad, missing or prefixed ones
// are rejected.
func TestSelfSignedCache(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "selfsigned", WriteTokens: []string{"W"}, SelfSigned: true, PublicKey: base64.StdEncoding.EncodeToString(pub)},
	}})
	c := client{t: t, base: srv.URL(), token: "W"}
	sign := func(key ed25519.PrivateKey, p testPath) string {
		return base64.StdEncoding.EncodeToString(ed25519.Sign(key, []byte(p.fingerprint())))
	}

	tests := []struct {
		name    string
		sig     func(p testPath) any
		wantMsg string // "" means accepted
	}{
		{name: "valid", sig: func(p testPath) any { return sign(priv, p) }},
		{name: "wrong key", sig: func(p testPath) any { return sign(otherPriv, p) }, wantMsg: "does not verify"},
		{name: "missing", sig: func(testPath) any { return nil }, wantMsg: "No signature found"},
		{name: "with key name", sig: func(p testPath) any { return "selfsigned.cachix.org-1:" + sign(priv, p) }, wantMsg: "without a key name"},
		{name: "not base64", sig: func(testPath) any { return "!!!" }, wantMsg: "standard base64"},
		{name: "signs another path", sig: func(testPath) any { return sign(priv, newTestPath(t, "other", "x")) }, wantMsg: "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := c
			c.t = t
			p := newTestPath(t, "signed", "signed "+tt.name)
			u := c.start("selfsigned", "zst")
			c.putAll(u, p.compressed, 0)
			r := c.complete(u, u.completeBody(p.create(tt.sig(p))))
			if tt.wantMsg == "" {
				r.want(t, 200)
				body := c.do("GET", srv.BinaryCacheURL("selfsigned")+"/"+p.hash+".narinfo", nil).want(t, 200).body
				ni, err := narinfo.Parse(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				key, err := signature.ParsePublicKey(srv.PublicKey("selfsigned"))
				if err != nil {
					t.Fatal(err)
				}
				if !signature.VerifyFirst(ni.Fingerprint(), ni.Signatures, []signature.PublicKey{key}) ||
					ni.Signatures[0].String() != "selfsigned.cachix.org-1:"+sign(priv, p) {
					t.Errorf("served signature %v does not carry the client's signature", ni.Signatures)
				}
				return
			}
			r.want(t, 400)
			if !strings.Contains(r.body, tt.wantMsg) {
				t.Errorf("message %q, want it to contain %q", r.body, tt.wantMsg)
			}
			if got := c.missing("selfsigned", p.hash); len(got) != 1 {
				t.Error("a rejected path was published")
			}
		})
	}
	if srv.ManagedPublicKey("selfsigned") != "" {
		t.Error("ManagedPublicKey of a self-signed cache is not empty")
	}
}

// TestProtocolTestVector pushes the §10 test vector (NAR of "hello\n",
// key seed 0x01..0x20) and requires the documented cSig to be accepted,
// which pins the server's fingerprint to the one Cachix and Nix use.
func TestProtocolTestVector(t *testing.T) {
	t.Parallel()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pubB64 := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	if pubB64 != "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=" {
		t.Fatalf("public key %s differs from the protocol document", pubB64)
	}
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "vector", WriteTokens: []string{"W"}, SelfSigned: true, PublicKey: pubB64},
	}})
	c := client{t: t, base: srv.URL(), token: "W"}

	p := testPath{
		hash: "0123456789abcdfghijklmnpqrsvwxyz", name: "hello", nar: narOfFile(t, []byte("hello\n")), comp: "zst",
		refs:    []string{"0123456789abcdfghijklmnpqrsvwxyz-hello", "zyxwvsrqpnmlkjihgfdcba9876543210-glibc-2.40"},
		deriver: "unknown-deriver",
	}
	p.compressed = compressZstd(t, p.nar)
	if len(p.nar) != 120 || p.narHash() != "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw" {
		t.Fatalf("NAR of hello\\n: %d bytes, %s", len(p.nar), p.narHash())
	}
	const docSig = "vI1vvDAJb/EngmgGtovdLMc5QX1Sre64TBHSF4SG8uyA+Xr2XExZ/7Ux8xj2GCfm9WI/VT2mXhJSLBwxtQyvAA=="
	c.push("vector", p, docSig)

	// The glibc reference is absent, so the narinfo stays hidden...
	c.do("GET", srv.BinaryCacheURL("vector")+"/"+p.hash+".narinfo", nil).want(t, 404)
	// ...and appears once glibc is pushed.
	glibc := newTestPath(t, "glibc-2.40", "libc")
	glibc.hash = "zyxwvsrqpnmlkjihgfdcba9876543210"
	c.push("vector", glibc, base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(glibc.fingerprint()))))
	body := c.do("GET", srv.BinaryCacheURL("vector")+"/"+p.hash+".narinfo", nil).want(t, 200).body
	if !strings.Contains(body, "\nSig: vector.cachix.org-1:"+docSig+"\n") {
		t.Errorf("served narinfo lacks the document's signature:\n%s", body)
	}
}

// TestNarinfoHiddenUntilClosureComplete checks the transitive closure rule:
// a narinfo is 404 until every reference (transitively) is present, while
// the bulk query already reports it present.
func TestNarinfoHiddenUntilClosureComplete(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	leaf := newTestPath(t, "leaf", "leaf")
	mid := newTestPath(t, "mid", "mid", leaf.base())
	top := newTestPath(t, "top", "top", mid.base())
	get := func(p testPath) int {
		return c.do("GET", srv.BinaryCacheURL("c")+"/"+p.hash+".narinfo", nil).status
	}

	c.push("c", top, nil)
	c.push("c", mid, nil)
	if got := c.missing("c", top.hash, mid.hash, leaf.hash); len(got) != 1 || got[0] != leaf.hash {
		t.Fatalf("bulk query = %v, want only the leaf missing", got)
	}
	if get(top) != 404 || get(mid) != 404 {
		t.Fatalf("narinfos served before the leaf was pushed: top %d, mid %d", get(top), get(mid))
	}
	if st := srv.Stats(); st.HiddenNarinfos != 2 {
		t.Errorf("HiddenNarinfos = %d, want 2", st.HiddenNarinfos)
	}
	c.push("c", leaf, nil)
	if get(top) != 200 || get(mid) != 200 || get(leaf) != 200 {
		t.Fatal("narinfos not served once the closure is complete")
	}
}

// TestUpstreamCompletesClosures: a path that upstream has counts as
// present in the bulk query and completes the closures that refer to it;
// it is not served itself.
func TestUpstreamCompletesClosures(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	libc := newTestPath(t, "libc", "libc")
	app := newTestPath(t, "app", "app", libc.base())
	get := func(p testPath) int {
		return c.do("GET", srv.BinaryCacheURL("c")+"/"+p.hash+".narinfo", nil).status
	}
	c.push("c", app, nil)
	if got := c.missing("c", app.hash, libc.hash); len(got) != 1 || got[0] != libc.hash {
		t.Fatalf("bulk query = %v, want libc missing", got)
	}
	if get(app) != 404 {
		t.Fatal("app served while libc is in neither the cache nor upstream")
	}
	srv.SetUpstream(libc.hash)
	if got := c.missing("c", app.hash, libc.hash); len(got) != 0 {
		t.Errorf("bulk query = %v: an upstream path must count as present", got)
	}
	if get(app) != 200 || get(libc) != 404 {
		t.Errorf("app %d (want 200), libc %d (want 404: upstream serves it)", get(app), get(libc))
	}
}

// TestDuplicateCompletionIsAccepted checks a second upload of a path the
// cache already has is accepted without change, and one with different
// content is refused.
func TestDuplicateCompletionIsAccepted(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "p", "same")
	c.push("c", p, nil)
	before := c.do("GET", srv.BinaryCacheURL("c")+"/"+p.hash+".narinfo", nil).want(t, 200).body
	c.push("c", p, nil)
	if st := srv.Stats(); st.DuplicateCompletes != 1 || st.UploadsCompleted != 1 {
		t.Errorf("stats %+v", st)
	}
	after := c.do("GET", srv.BinaryCacheURL("c")+"/"+p.hash+".narinfo", nil).want(t, 200).body
	if before != after {
		t.Errorf("narinfo changed:\n%s\n%s", before, after)
	}
	q := newTestPath(t, "p", "different")
	q.hash = p.hash
	u := c.start("c", "zst")
	c.putAll(u, q.compressed, 0)
	r := c.complete(u, u.completeBody(q.create(nil))).want(t, 400)
	if !strings.Contains(r.body, "cannot be overwritten") {
		t.Errorf("message %q", r.body)
	}
}

// TestKeyRegistration registers a public key on a self-signed cache that
// has none, after which signed pushes work, and a second key is refused.
func TestKeyRegistration(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "k", WriteTokens: []string{"W"}, SelfSigned: true},
	}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "p", "p")
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(p.fingerprint())))
	u := c.start("k", "zst")
	c.putAll(u, p.compressed, 0)
	r := c.complete(u, u.completeBody(p.create(sig))).want(t, 400)
	if !strings.Contains(r.body, "No public key set yet") {
		t.Errorf("message %q", r.body)
	}
	c.do("POST", api("k")+"/key", map[string]string{"publicKey": base64.StdEncoding.EncodeToString(pub)}).want(t, 200)
	c.complete(u, u.completeBody(p.create(sig))).want(t, 200)
	r = c.do("POST", api("k")+"/key", map[string]string{"publicKey": base64.StdEncoding.EncodeToString(pub)}).want(t, 400)
	if !strings.Contains(r.body, "already exists") {
		t.Errorf("message %q", r.body)
	}
}

// TestDeferredVerification: with DeferVerification a completion is
// published at once, and VerifyDeferred later checks every NAR completed
// since the last call, taking a false one out of the cache again.
func TestDeferredVerification(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{
		Caches:            []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}},
		DeferVerification: true,
	})
	c := client{t: t, base: srv.URL(), token: "W"}
	good := newTestPath(t, "good", "good contents")
	bad := newTestPath(t, "bad", "bad contents")
	other := newTestPath(t, "other", "other contents")
	c.push("c", good, nil)
	u := c.start("c", "zst")
	c.putAll(u, bad.compressed, 0)
	claim := bad.create(nil)
	claim["cNarHash"] = other.narHash() // a valid hash, of another NAR
	c.complete(u, u.completeBody(claim)).want(t, 200)
	narinfo := func(p testPath) string { return srv.BinaryCacheURL("c") + "/" + p.hash + ".narinfo" }
	c.do("GET", narinfo(bad), nil).want(t, 200) // published before verification

	// A part whose data is not what its Content-MD5 announced: the PUT
	// takes it (the MD5 check is deferred too), the check finds it.
	garbled := newTestPath(t, "garbled", "garbled contents")
	u = c.start("c", "zst")
	announced := md5b64(other.compressed)
	url := c.presign(u, 1, announced)
	r := client{t: t}.do("PUT", url, garbled.compressed, "Content-MD5", announced,
		"Content-Type", "application/octet-stream").want(t, 200)
	u.etags = []string{r.header.Get("ETag")}
	c.complete(u, u.completeBody(garbled.create(nil))).want(t, 200)

	checked, failures := srv.VerifyDeferred()
	if checked != 3 || len(failures) != 2 ||
		!strings.Contains(failures[0], bad.path()) || !strings.Contains(failures[0], "cNarHash") ||
		!strings.Contains(failures[1], garbled.path()) || !strings.Contains(failures[1], "BadDigest") {
		t.Fatalf("VerifyDeferred = %d, %q; want 3 checked, a cNarHash failure for %s and a BadDigest for %s",
			checked, failures, bad.path(), garbled.path())
	}
	c.do("GET", narinfo(bad), nil).want(t, 404)
	c.do("GET", narinfo(garbled), nil).want(t, 404)
	if got := c.missing("c", good.hash, bad.hash, garbled.hash); len(got) != 2 || got[0] != bad.hash || got[1] != garbled.hash {
		t.Errorf("missing after verification = %q, want %s and %s", got, bad.hash, garbled.hash)
	}
	body := c.do("GET", narinfo(good), nil).want(t, 200).body
	if !strings.Contains(body, "FileHash: sha256:"+good.fileHash()) {
		t.Errorf("good narinfo lacks its file hash:\n%s", body)
	}
	if checked, failures := srv.VerifyDeferred(); checked != 0 || failures != nil {
		t.Errorf("second VerifyDeferred = %d, %q; want nothing left", checked, failures)
	}
}

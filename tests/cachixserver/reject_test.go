package cachixserver_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// nic returns the narInfoCreate object of a completion body.
func nic(body map[string]any) map[string]any { return body["narInfoCreate"].(map[string]any) }

// partsOf returns the parts list of a completion body.
func partsOf(body map[string]any) []any { return body["parts"].([]any) }

// TestCompletionRejections checks every completion rule: each case
// uploads a NAR, sends a broken completion and expects 400 with a
// message; the path must stay unpublished, the rejection must be
// recorded, and (when the uploaded data was fine) a correct completion of
// the same upload must still succeed, proving the rejection had no effect.
func TestCompletionRejections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{
		MinPartSize: -1,
		Caches:      []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}},
	})

	otherHash := func(b string) string { s := sha256.Sum256([]byte(b)); return nixbase32.EncodeToString(s[:]) }
	tests := []struct {
		name string
		// data replaces the uploaded bytes (and possibly the NAR); the
		// claims follow the replacement, so only the check under test can
		// catch it.
		data   func(t *testing.T, p *testPath)
		parts  int // how many parts to upload (default 1)
		refs   []string
		mutate func(body map[string]any, p testPath)
		want   string
	}{
		{name: "unquoted ETag", want: "ETags must be sent verbatim", mutate: func(b map[string]any, _ testPath) {
			part := partsOf(b)[0].(map[string]any)
			part["eTag"] = strings.Trim(part["eTag"].(string), `"`)
		}},
		{name: "wrong ETag", want: "does not match", mutate: func(b map[string]any, _ testPath) {
			partsOf(b)[0].(map[string]any)["eTag"] = `"00000000000000000000000000000000"`
		}},
		{name: "parts out of order", parts: 2, want: "sorted and contiguous", mutate: func(b map[string]any, _ testPath) {
			ps := partsOf(b)
			ps[0], ps[1] = ps[1], ps[0]
		}},
		{name: "parts not from 1", parts: 2, want: "position 0 has partNumber 2", mutate: func(b map[string]any, _ testPath) {
			b["parts"] = partsOf(b)[1:]
		}},
		{name: "uploaded part not listed", parts: 2, want: "uploaded but not listed", mutate: func(b map[string]any, _ testPath) {
			b["parts"] = partsOf(b)[:1]
		}},
		{name: "part never uploaded", want: "part 2 was never uploaded", mutate: func(b map[string]any, _ testPath) {
			b["parts"] = append(partsOf(b), map[string]any{"partNumber": 2, "eTag": `"x"`})
		}},
		{name: "partNumber as string", want: "expected an integer", mutate: func(b map[string]any, _ testPath) {
			partsOf(b)[0].(map[string]any)["partNumber"] = "1"
		}},
		{name: "part field misspelt", want: "unknown field", mutate: func(b map[string]any, _ testPath) {
			p := partsOf(b)[0].(map[string]any)
			p["etag"] = p["eTag"]
			delete(p, "eTag")
		}},
		{name: "parts null", want: "non-empty array is required", mutate: func(b map[string]any, _ testPath) { b["parts"] = nil }},
		{name: "parts empty", want: "empty array", mutate: func(b map[string]any, _ testPath) { b["parts"] = []any{} }},
		{name: "file hash mismatch", want: "cFileHash", mutate: func(b map[string]any, _ testPath) {
			s := sha256.Sum256([]byte("other"))
			nic(b)["cFileHash"] = hex.EncodeToString(s[:])
		}},
		{name: "file size mismatch", want: "cFileSize", mutate: func(b map[string]any, p testPath) {
			nic(b)["cFileSize"] = len(p.compressed) + 1
		}},
		{name: "nar hash mismatch", want: "cNarHash", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cNarHash"] = "sha256:" + otherHash("x")
		}},
		{name: "nar size mismatch", want: "cNarSize", mutate: func(b map[string]any, p testPath) {
			nic(b)["cNarSize"] = len(p.nar) + 8
		}},
		{name: "nar size zero", want: "cNarSize must be positive", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cNarSize"] = 0
		}},
		{name: "nar size negative", want: "cNarSize must be positive", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cNarSize"] = -120
		}},
		{name: "nar size as string", want: "expected an integer", mutate: func(b map[string]any, p testPath) {
			nic(b)["cNarSize"] = itoa(len(p.nar))
		}},
		{name: "nar size fractional", want: "expected an integer", mutate: func(b map[string]any, p testPath) {
			nic(b)["cNarSize"] = json.RawMessage(itoa(len(p.nar)) + ".0")
		}},
		{name: "malformed NAR", want: "malformed NAR", data: func(t *testing.T, p *testPath) {
			p.nar = []byte("this is not a NAR at all, just some bytes")
			p.compressed = compressZstd(t, p.nar)
		}},
		{name: "NAR truncated at a token boundary", want: "malformed NAR", data: func(t *testing.T, p *testPath) {
			p.nar = p.nar[:len(p.nar)-16] // without the closing ")"
			p.compressed = compressZstd(t, p.nar)
		}},
		{name: "NAR truncated inside a token", want: "malformed NAR", data: func(t *testing.T, p *testPath) {
			p.nar = p.nar[:len(p.nar)-8]
			p.compressed = compressZstd(t, p.nar)
		}},
		{name: "NAR with unsorted directory entries", want: "malformed NAR", data: func(t *testing.T, p *testPath) {
			p.nar = unsortedDirNAR(t)
			p.compressed = compressZstd(t, p.nar)
		}},
		{name: "trailing data after NAR", want: "trailing data", data: func(t *testing.T, p *testPath) {
			p.nar = append(append([]byte{}, p.nar...), "extra bytes"...)
			p.compressed = compressZstd(t, p.nar)
		}},
		{name: "not compressed", want: "decompressing NAR (zst)", data: func(_ *testing.T, p *testPath) {
			p.compressed = p.nar
		}},
		{name: "xz data in a zst upload", want: "decompressing NAR (zst)", data: func(t *testing.T, p *testPath) {
			p.compressed = compressXZ(t, p.nar)
		}},
		{name: "garbage after the zstd frame", want: "decompressing NAR (zst)", data: func(t *testing.T, p *testPath) {
			p.compressed = append(compressZstd(t, p.nar), "garbage!"...)
		}},
		{name: "file hash with prefix", want: "without a prefix", mutate: func(b map[string]any, p testPath) {
			nic(b)["cFileHash"] = "sha256:" + p.fileHash()
		}},
		{name: "file hash upper-case", want: "lower-case hex", mutate: func(b map[string]any, p testPath) {
			nic(b)["cFileHash"] = strings.ToUpper(p.fileHash())
		}},
		{name: "file hash nix32", want: "lower-case hex", mutate: func(b map[string]any, p testPath) {
			s := sha256.Sum256(p.compressed)
			nic(b)["cFileHash"] = nixbase32.EncodeToString(s[:])
		}},
		{name: "nar hash hex", want: "52 nix-base32", mutate: func(b map[string]any, p testPath) {
			s := sha256.Sum256(p.nar)
			nic(b)["cNarHash"] = "sha256:" + hex.EncodeToString(s[:])
		}},
		{name: "nar hash without prefix", want: "want sha256:", mutate: func(b map[string]any, p testPath) {
			nic(b)["cNarHash"] = strings.TrimPrefix(p.narHash(), "sha256:")
		}},
		{name: "nar hash base64 SRI", want: "want sha256:", mutate: func(b map[string]any, p testPath) {
			s := sha256.Sum256(p.nar)
			nic(b)["cNarHash"] = "sha256-" + base64.StdEncoding.EncodeToString(s[:])
		}},
		{name: "store hash too short", want: "cStoreHash", mutate: func(b map[string]any, p testPath) {
			nic(b)["cStoreHash"] = p.hash[:31]
		}},
		{name: "store hash not nix32", want: "not nix-base32", mutate: func(b map[string]any, p testPath) {
			nic(b)["cStoreHash"] = "e" + p.hash[1:]
		}},
		{name: "store hash is a full path", want: "cStoreHash", mutate: func(b map[string]any, p testPath) {
			nic(b)["cStoreHash"] = p.path()
		}},
		{name: "store suffix with slash", want: "cStoreSuffix", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cStoreSuffix"] = "bin/hello"
		}},
		{name: "store suffix empty", want: "cStoreSuffix", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cStoreSuffix"] = ""
		}},
		{name: "reference as full path", refs: []string{"ref"}, want: "base name", mutate: func(b map[string]any, p testPath) {
			nic(b)["cReferences"] = []string{"/nix/store/" + p.refs[0]}
		}},
		{name: "reference without name", refs: []string{"ref"}, want: "<hash>-<name>", mutate: func(b map[string]any, p testPath) {
			nic(b)["cReferences"] = []string{p.refs[0][:32]}
		}},
		{name: "references unsorted", refs: []string{"a", "b"}, want: "sorted", mutate: func(b map[string]any, p testPath) {
			nic(b)["cReferences"] = []string{p.refs[1], p.refs[0]}
		}},
		{name: "references duplicated", refs: []string{"a"}, want: "sorted and unique", mutate: func(b map[string]any, p testPath) {
			nic(b)["cReferences"] = []string{p.refs[0], p.refs[0]}
		}},
		{name: "references null", want: "expected an array", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cReferences"] = nil
		}},
		{name: "reference null element", want: "expected a string", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cReferences"] = []any{nil}
		}},
		{name: "self reference with another name", want: "has the path's hash", mutate: func(b map[string]any, p testPath) {
			nic(b)["cReferences"] = []string{p.hash + "-impostor"}
		}},
		{name: "deriver null", want: `"cDeriver": expected a string`, mutate: func(b map[string]any, _ testPath) {
			nic(b)["cDeriver"] = nil
		}},
		{name: "deriver empty", want: "cDeriver must be", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cDeriver"] = ""
		}},
		{name: "deriver full path", want: "cDeriver must be", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cDeriver"] = "/nix/store/" + otherHash("d")[:32] + "-p.drv"
		}},
		{name: "deriver without .drv", want: "cDeriver must be", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cDeriver"] = otherHash("d")[:32] + "-p"
		}},
		{name: "missing cSig", want: `missing field(s) "cSig"`, mutate: func(b map[string]any, _ testPath) {
			delete(nic(b), "cSig")
		}},
		{name: "missing cDeriver", want: `missing field(s) "cDeriver"`, mutate: func(b map[string]any, _ testPath) {
			delete(nic(b), "cDeriver")
		}},
		{name: "unknown field", want: `unknown field(s) "cSystem"`, mutate: func(b map[string]any, _ testPath) {
			nic(b)["cSystem"] = "x86_64-linux"
		}},
		{name: "field name in the wrong case", want: `unknown field(s) "cNarhash"`, mutate: func(b map[string]any, _ testPath) {
			nic(b)["cNarhash"] = nic(b)["cNarHash"]
			delete(nic(b), "cNarHash")
		}},
		{name: "signature on a managed cache", want: "cSig must be null", mutate: func(b map[string]any, _ testPath) {
			nic(b)["cSig"] = base64.StdEncoding.EncodeToString(make([]byte, 64))
		}},
		{name: "unknown top-level field", want: `unknown field(s) "extra"`, mutate: func(b map[string]any, _ testPath) {
			b["extra"] = true
		}},
		{name: "missing narInfoCreate", want: `missing field(s) "narInfoCreate"`, mutate: func(b map[string]any, _ testPath) {
			delete(b, "narInfoCreate")
		}},
		{name: "narInfoCreate null", want: "expected an object", mutate: func(b map[string]any, _ testPath) {
			b["narInfoCreate"] = nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := client{t: t, base: srv.URL(), token: "W"}
			var refs []string
			for _, r := range tt.refs {
				refs = append(refs, randomHash(t)+"-"+r)
			}
			p := newTestPath(t, "victim", "contents of "+tt.name, refs...)
			if tt.data != nil {
				tt.data(t, &p)
			}
			u := c.start("c", "zst")
			parts := max(tt.parts, 1)
			c.putAll(u, p.compressed, (len(p.compressed)+parts-1)/parts)
			if len(u.etags) != parts {
				t.Fatalf("uploaded %d parts, want %d", len(u.etags), parts)
			}
			body := u.completeBody(p.create(nil))
			if tt.mutate != nil {
				tt.mutate(body, p)
			}
			r := c.complete(u, body).want(t, 400)
			if !strings.Contains(r.body, tt.want) {
				t.Errorf("message %q, want it to contain %q", r.body, tt.want)
			}
			if got := c.missing("c", p.hash); len(got) != 1 {
				t.Fatal("the rejected path was published")
			}
			found := false
			for _, rej := range srv.Stats().Rejections {
				found = found || rej.Message == r.body && rej.Status == 400 && rej.Endpoint == cachixserver.EndpointMultipartComplete
			}
			if !found {
				t.Errorf("rejection %q not recorded in stats", r.body)
			}
			if tt.data == nil {
				c.complete(u, u.completeBody(p.create(nil))).want(t, 200)
			}
		})
	}
}

// TestUploadRequestRejections covers the create, presign, PUT and abort
// rules.
func TestUploadRequestRejections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "c", WriteTokens: []string{"W"}},
		{Name: "other", WriteTokens: []string{"W"}},
	}})

	t.Run("compression values", func(t *testing.T) {
		t.Parallel()
		// A server of its own, so that its upload counter is not shared.
		srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
		c := client{t: t, base: srv.URL(), token: "W"}
		for q, want := range map[string]string{
			"?compression=zstd": "Wrong compression method: zstd",
			"?compression=gzip": "Wrong compression method: gzip",
			"?compression=ZST":  "Wrong compression method: ZST",
			"?compression=":     "Wrong compression method: ",
			"":                  "Missing compression method",
		} {
			r := c.do("POST", api("c")+"/multipart-nar"+q, nil).want(t, 400)
			if r.body != want && !strings.HasPrefix(r.body, want) {
				t.Errorf("%q: message %q, want %q", q, r.body, want)
			}
		}
		if st := srv.Stats(); st.UploadsStarted != 0 {
			t.Errorf("rejected creates started %d uploads", st.UploadsStarted)
		}
	})

	t.Run("presign", func(t *testing.T) {
		t.Parallel()
		c := client{t: t, base: srv.URL(), token: "W"}
		u := c.start("c", "zst")
		base := api("c") + "/multipart-nar/" + u.narID
		good := map[string]string{"contentMD5": md5b64([]byte("x"))}
		tests := []struct {
			name  string
			query string
			body  any
			ctype string
			want  string
		}{
			{"md5 not base64", "?uploadId=" + u.uploadID + "&partNumber=1", map[string]string{"contentMD5": "not base64!"}, "", "contentMD5 must be"},
			{"md5 hex", "?uploadId=" + u.uploadID + "&partNumber=1", map[string]string{"contentMD5": hex.EncodeToString(make([]byte, 16))}, "", "contentMD5 must be"},
			{"md5 wrong length", "?uploadId=" + u.uploadID + "&partNumber=1", map[string]string{"contentMD5": base64.StdEncoding.EncodeToString(make([]byte, 8))}, "", "contentMD5 must be"},
			{"field misspelt", "?uploadId=" + u.uploadID + "&partNumber=1", map[string]string{"contentMd5": md5b64(nil)}, "", "unknown field"},
			{"part 0", "?uploadId=" + u.uploadID + "&partNumber=0", good, "", "partNumber must be"},
			{"part 10001", "?uploadId=" + u.uploadID + "&partNumber=10001", good, "", "partNumber must be"},
			{"part missing", "?uploadId=" + u.uploadID, good, "", "Missing query parameter partNumber"},
			{"uploadId missing", "?partNumber=1", good, "", "Missing query parameter uploadId"},
			{"uploadId wrong", "?uploadId=nope&partNumber=1", good, "", "uploadId does not belong"},
			{"not JSON content type", "?uploadId=" + u.uploadID + "&partNumber=1", []byte(`{"contentMD5":"` + md5b64(nil) + `"}`), "text/plain", "unsupported content type"},
		}
		for _, tt := range tests {
			var r response
			if tt.ctype != "" {
				r = c.do("POST", base+tt.query, tt.body, "Content-Type", tt.ctype)
			} else {
				r = c.do("POST", base+tt.query, tt.body)
			}
			wantStatus := 400
			if tt.ctype != "" {
				wantStatus = 415
			}
			if r.status != wantStatus || !strings.Contains(r.body, tt.want) {
				t.Errorf("%s: %d %q, want %d containing %q", tt.name, r.status, r.body, wantStatus, tt.want)
			}
		}
		// The narId belongs to another cache.
		r := c.do("POST", api("other")+"/multipart-nar/"+u.narID+"?uploadId="+u.uploadID+"&partNumber=1", good)
		if r.status != 400 || !strings.Contains(r.body, "No such upload") {
			t.Errorf("cross-cache presign: %d %q", r.status, r.body)
		}
	})

	t.Run("put", func(t *testing.T) {
		t.Parallel()
		// A server of its own, so that its part counter is not shared.
		srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
		c := client{t: t, base: srv.URL(), token: "W"}
		storage := client{t: t, base: srv.URL()}
		data := []byte("some compressed bytes")
		u := c.start("c", "zst")
		url := c.presign(u, 1, md5b64(data))

		r := storage.do("PUT", url, data, "Content-MD5", md5b64([]byte("other")))
		if r.status != 400 || !strings.Contains(r.body, "differs from the presigned MD5") {
			t.Errorf("wrong Content-MD5 header: %d %q", r.status, r.body)
		}
		r = storage.do("PUT", url, []byte("tampered bytes!!!!!!!"), "Content-MD5", md5b64(data))
		if r.status != 400 || !strings.Contains(r.body, "BadDigest") {
			t.Errorf("body differs from MD5: %d %q", r.status, r.body)
		}
		r = storage.do("PUT", url, data)
		if r.status != 400 || !strings.Contains(r.body, "Content-MD5") {
			t.Errorf("no Content-MD5: %d %q", r.status, r.body)
		}
		r = storage.do("PUT", url, data, "Content-MD5", md5b64(data), "Authorization", "Bearer W")
		if r.status != 400 || !strings.Contains(r.body, "Authorization") {
			t.Errorf("Authorization sent to storage: %d %q", r.status, r.body)
		}
		r = storage.do("PUT", strings.Replace(url, "X-Amz-Signature=", "X-Amz-Signature=0", 1), data, "Content-MD5", md5b64(data))
		if r.status != 403 {
			t.Errorf("tampered signature: %d %q", r.status, r.body)
		}
		r = storage.do("PUT", strings.Replace(url, "partNumber=1", "partNumber=2", 1), data, "Content-MD5", md5b64(data))
		if r.status != 403 {
			t.Errorf("tampered part number: %d %q", r.status, r.body)
		}
		// Chunked upload without Content-Length, as S3 refuses it.
		req, err := http.NewRequest("PUT", url, io.MultiReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-MD5", md5b64(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 411 {
			t.Errorf("chunked PUT: %d, want 411", resp.StatusCode)
		}
		// An empty part.
		emptyURL := c.presign(u, 2, md5b64(nil))
		r = storage.do("PUT", emptyURL, []byte{}, "Content-MD5", md5b64(nil))
		if r.status != 400 || !strings.Contains(r.body, "must not be empty") {
			t.Errorf("empty part: %d %q", r.status, r.body)
		}
		if st := srv.Stats(); st.PartsUploaded != 0 {
			t.Errorf("%d rejected parts were stored", st.PartsUploaded)
		}
		// The correct PUT still works, with a quoted hex MD5 ETag.
		r = storage.do("PUT", url, data, "Content-MD5", md5b64(data)).want(t, 200)
		sum := md5sumHex(data)
		if r.header.Get("ETag") != `"`+sum+`"` {
			t.Errorf("ETag %q, want quoted %s", r.header.Get("ETag"), sum)
		}
	})

	t.Run("abort", func(t *testing.T) {
		t.Parallel()
		c := client{t: t, base: srv.URL(), token: "W"}
		p := newTestPath(t, "aborted", "aborted")
		u := c.start("c", "zst")
		url := c.presign(u, 1, md5b64(p.compressed))
		c.do("POST", api("c")+"/multipart-nar/"+u.narID+"/abort?uploadId=wrong", nil).want(t, 400)
		c.do("POST", api("c")+"/multipart-nar/"+u.narID+"/abort?uploadId="+u.uploadID, nil).want(t, 200)
		r := client{t: t}.do("PUT", url, p.compressed, "Content-MD5", md5b64(p.compressed))
		if r.status < 400 {
			t.Errorf("PUT after abort: %d", r.status)
		}
		u.etags = []string{`"` + md5sumHex(p.compressed) + `"`}
		r = c.complete(u, u.completeBody(p.create(nil)))
		if r.status != 400 || !strings.Contains(r.body, "No such upload") {
			t.Errorf("complete after abort: %d %q", r.status, r.body)
		}
		c.do("POST", api("c")+"/multipart-nar/"+u.narID+"/abort?uploadId="+u.uploadID, nil).want(t, 400)
	})

	t.Run("complete content type", func(t *testing.T) {
		t.Parallel()
		c := client{t: t, base: srv.URL(), token: "W"}
		p := newTestPath(t, "ctype", "ctype")
		u := c.start("c", "zst")
		c.putAll(u, p.compressed, 0)
		raw := mustJSON(u.completeBody(p.create(nil)))
		r := c.do("POST", api("c")+"/multipart-nar/"+u.narID+"/complete?uploadId="+u.uploadID, raw, "Content-Type", "text/plain")
		if r.status != 415 {
			t.Errorf("text/plain completion: %d %q", r.status, r.body)
		}
		r = c.do("POST", api("c")+"/multipart-nar/"+u.narID+"/complete?uploadId="+u.uploadID, append(raw, " {}"...), "Content-Type", "application/json")
		if r.status != 400 || !strings.Contains(r.body, "trailing data") {
			t.Errorf("two JSON values: %d %q", r.status, r.body)
		}
		c.complete(u, u.completeBody(p.create(nil))).want(t, 200)
		r = c.complete(u, u.completeBody(p.create(nil)))
		if r.status != 400 || !strings.Contains(r.body, "No such upload") {
			t.Errorf("second completion of the same upload: %d %q", r.status, r.body)
		}
	})
}

// TestMinimumPartSize checks S3's rule that every part but the last is at
// least 5 MiB, with the default configuration.
func TestMinimumPartSize(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "small-parts", strings.Repeat("0123456789", 100))
	u := c.start("c", "zst")
	c.putAll(u, p.compressed, len(p.compressed)/2+1)
	r := c.complete(u, u.completeBody(p.create(nil))).want(t, 400)
	if !strings.Contains(r.body, "EntityTooSmall") {
		t.Errorf("message %q", r.body)
	}
}

// TestRejectPath checks RejectPath makes completion fail and nothing is
// published, and UnrejectPath lifts it.
func TestRejectPath(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "doomed", "doomed")
	srv.RejectPath(p.hash)
	u := c.start("c", "zst")
	c.putAll(u, p.compressed, 0)
	r := c.complete(u, u.completeBody(p.create(nil))).want(t, 400)
	if !strings.Contains(r.body, "RejectPath") {
		t.Errorf("message %q", r.body)
	}
	if len(srv.StorePaths("c")) != 0 {
		t.Fatal("a rejected path was stored")
	}
	srv.UnrejectPath(p.hash)
	c.complete(u, u.completeBody(p.create(nil))).want(t, 200)
}

// unsortedDirNAR hand-builds a NAR of a directory whose entries are out
// of order ("b" before "a"), which Nix never produces and must refuse.
func unsortedDirNAR(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	str := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		buf.Write(n[:])
		buf.WriteString(s)
		buf.Write(make([]byte, (8-len(s)%8)%8))
	}
	file := func(name, contents string) {
		for _, s := range []string{"entry", "(", "name", name, "node", "(", "type", "regular", "contents", contents, ")", ")"} {
			str(s)
		}
	}
	for _, s := range []string{"nix-archive-1", "(", "type", "directory"} {
		str(s)
	}
	file("b", "second")
	file("a", "first")
	str(")")
	return buf.Bytes()
}

// md5sumHex is the hex MD5 of b.
func md5sumHex(b []byte) string {
	raw, _ := base64.StdEncoding.DecodeString(md5b64(b))
	return hex.EncodeToString(raw)
}

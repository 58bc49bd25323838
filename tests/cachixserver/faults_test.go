package cachixserver_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// outcome is what one request saw: a status, or -1 for a dropped connection.
type outcome struct {
	status     int
	retryAfter string
	hasRA      bool
	etag       string
	body       []byte
}

// try sends a request on a fresh connection (so Go's transport never
// silently retries a dropped one) and reports the outcome.
func try(t *testing.T, method, url, token string, body []byte, hdr ...string) outcome {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return outcome{status: -1}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{status: -1}
	}
	ra, has := resp.Header["Retry-After"]
	o := outcome{status: resp.StatusCode, hasRA: has, etag: resp.Header.Get("ETag"), body: b}
	if has {
		o.retryAfter = ra[0]
	}
	return o
}

// TestFaultRateAndKinds checks random faults come at roughly the
// configured rate, in every kind, are all counted, and 429s carry the
// configured Retry-After.
func TestFaultRateAndKinds(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{
		Caches:     []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}},
		FaultRate:  0.3,
		RetryAfter: 1,
		Seed:       42,
	})
	const n = 600
	kinds := map[int]int{}
	faults := 0
	for i := 0; i < n; i++ {
		o := try(t, "GET", srv.URL()+api("c"), "W", nil)
		kinds[o.status]++
		if o.status != 200 {
			faults++
		}
		if o.status == 429 && o.retryAfter != "1" {
			t.Errorf("429 with Retry-After %q, want 1", o.retryAfter)
		}
	}
	if faults < 130 || faults > 230 {
		t.Errorf("%d faults in %d requests at rate 0.3", faults, n)
	}
	for _, status := range []int{429, 500, 502, 503, -1} {
		if kinds[status] == 0 {
			t.Errorf("no fault with status %d (outcomes %v)", status, kinds)
		}
	}
	for status := range kinds {
		switch status {
		case 200, 429, 500, 502, 503, -1:
		default:
			t.Errorf("unexpected status %d", status)
		}
	}
	st := srv.Stats()
	if st.FaultsInjected != faults || st.Faults[cachixserver.EndpointCacheInfo] != faults || st.Requests[cachixserver.EndpointCacheInfo] != n {
		t.Errorf("stats: %d faults injected (%v), %d requests; observed %d faults", st.FaultsInjected, st.Faults, st.Requests[cachixserver.EndpointCacheInfo], faults)
	}
}

// TestFaultsAreDeterministic checks the same seed gives the same fault
// sequence and another seed a different one.
func TestFaultsAreDeterministic(t *testing.T) {
	t.Parallel()
	run := func(seed int64) []int {
		srv := startServer(t, cachixserver.Config{
			Caches:    []cachixserver.CacheConfig{{Name: "c", Public: true}},
			FaultRate: 0.5,
			Seed:      seed,
		})
		var seq []int
		for i := 0; i < 100; i++ {
			seq = append(seq, try(t, "GET", srv.URL()+api("c"), "", nil).status)
		}
		return seq
	}
	a, b, c := run(7), run(7), run(8)
	if !equalInts(a, b) {
		t.Errorf("same seed, different sequences:\n%v\n%v", a, b)
	}
	if equalInts(a, c) {
		t.Error("different seeds gave the same sequence")
	}
}

// equalInts compares two int slices.
func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFaultScopeAndRuntimeChanges checks the binary-cache view is spared
// unless asked for, and that the rate, kinds and Retry-After can be
// changed at run time.
func TestFaultScopeAndRuntimeChanges(t *testing.T) {
	t.Parallel()
	for _, viewFaulted := range []bool{false, true} {
		t.Run("view faulted "+strconv.FormatBool(viewFaulted), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, cachixserver.Config{
				Caches:           []cachixserver.CacheConfig{{Name: "c", Public: true}},
				FaultRate:        1,
				FaultKinds:       []cachixserver.FaultKind{cachixserver.Fault503},
				FaultBinaryCache: viewFaulted,
			})
			for i := 0; i < 20; i++ {
				if o := try(t, "GET", srv.URL()+api("c"), "", nil); o.status != 503 {
					t.Fatalf("API request %d: %d, want 503", i, o.status)
				}
				want := 200
				if viewFaulted {
					want = 503
				}
				if o := try(t, "GET", srv.BinaryCacheURL("c")+"/nix-cache-info", "", nil); o.status != want {
					t.Fatalf("view request %d: %d, want %d", i, o.status, want)
				}
			}
		})
	}

	t.Run("runtime", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", Public: true}}, RetryAfter: -1})
		url := srv.URL() + api("c")
		if o := try(t, "GET", url, "", nil); o.status != 200 {
			t.Fatalf("no faults configured: %d", o.status)
		}
		if err := srv.SetFaultRate(1); err != nil {
			t.Fatal(err)
		}
		if err := srv.SetFaultKinds(cachixserver.Fault429); err != nil {
			t.Fatal(err)
		}
		if o := try(t, "GET", url, "", nil); o.status != 429 || o.hasRA {
			t.Errorf("429 without Retry-After expected, got %+v", o)
		}
		srv.SetRetryAfter(0)
		if o := try(t, "GET", url, "", nil); o.status != 429 || o.retryAfter != "0" {
			t.Errorf("429 with Retry-After 0 expected, got %+v", o)
		}
		srv.SetRetryAfter(3)
		if o := try(t, "GET", url, "", nil); o.retryAfter != "3" {
			t.Errorf("Retry-After 3 expected, got %+v", o)
		}
		if err := srv.SetFaultRate(0); err != nil {
			t.Fatal(err)
		}
		if o := try(t, "GET", url, "", nil); o.status != 200 {
			t.Errorf("rate 0: %d", o.status)
		}
		if srv.SetFaultRate(1.5) == nil || srv.SetFaultKinds("418") == nil || srv.FailNext("", "teapot", 1) == nil {
			t.Error("invalid fault settings accepted")
		}
		if err := srv.FailNext(cachixserver.EndpointCacheInfo, cachixserver.FaultDrop, 2); err != nil {
			t.Fatal(err)
		}
		for i, want := range []int{-1, -1, 200} {
			if o := try(t, "GET", url, "", nil); o.status != want {
				t.Errorf("FailNext request %d: %d, want %d", i, o.status, want)
			}
		}
	})
}

// TestFaultedRequestsHaveNoEffect injects a fault into each step of an
// upload and a pin and checks nothing changed, then that the retried
// step succeeds.
func TestFaultedRequestsHaveNoEffect(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "faulty", "faulty")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(srv.FailNext(cachixserver.EndpointMultipartCreate, cachixserver.Fault500, 1))
	if o := try(t, "POST", srv.URL()+api("c")+"/multipart-nar?compression=zst", "W", nil); o.status != 500 {
		t.Fatalf("create: %d", o.status)
	}
	if st := srv.Stats(); st.UploadsStarted != 0 {
		t.Fatalf("a faulted create started an upload")
	}
	u := c.start("c", "zst")

	sum := md5b64(p.compressed)
	url := c.presign(u, 1, sum)
	must(srv.FailNext(cachixserver.EndpointStoragePut, cachixserver.FaultDrop, 1))
	if o := try(t, "PUT", url, "", p.compressed, "Content-MD5", sum); o.status != -1 {
		t.Fatalf("PUT was not dropped: %d", o.status)
	}
	u.etags = []string{`"` + md5sumHex(p.compressed) + `"`}
	r := c.complete(u, u.completeBody(p.create(nil))).want(t, 400)
	if st := srv.Stats(); st.PartsUploaded != 0 || st.PutBytes != 0 {
		t.Fatalf("a dropped PUT stored data: %+v (%s)", st, r.body)
	}
	must(srv.FailNext(cachixserver.EndpointStoragePut, cachixserver.Fault503, 1))
	if o := try(t, "PUT", url, "", p.compressed, "Content-MD5", sum); o.status != 503 {
		t.Fatalf("PUT: %d", o.status)
	}
	c.putPart(u, 1, p.compressed)

	must(srv.FailNext(cachixserver.EndpointMultipartComplete, cachixserver.FaultDrop, 1))
	if o := try(t, "POST", srv.URL()+api("c")+"/multipart-nar/"+u.narID+"/complete?uploadId="+u.uploadID, "W",
		mustJSON(u.completeBody(p.create(nil))), "Content-Type", "application/json"); o.status != -1 {
		t.Fatalf("complete was not dropped: %d", o.status)
	}
	if len(srv.StorePaths("c")) != 0 {
		t.Fatal("a dropped completion published the path")
	}
	must(srv.FailNext(cachixserver.EndpointMultipartComplete, cachixserver.Fault429, 1))
	c.complete(u, u.completeBody(p.create(nil))).want(t, 429)
	c.complete(u, u.completeBody(p.create(nil))).want(t, 200)

	pin := map[string]any{"name": "p", "storePath": p.path(), "artifacts": []string{}, "keep": nil}
	must(srv.FailNext(cachixserver.EndpointPinCreate, cachixserver.Fault502, 1))
	c.do("POST", api("c")+"/pin", pin).want(t, 502)
	if len(srv.Pins("c")) != 0 {
		t.Fatal("a faulted pin was created")
	}
	c.do("POST", api("c")+"/pin", pin).want(t, 200)

	st := srv.Stats()
	if st.UploadsStarted != 1 || st.UploadsCompleted != 1 || st.PartsUploaded != 1 || st.PinsCreated != 1 ||
		st.PutBytes != int64(len(p.compressed)) || st.FaultsInjected != 6 {
		t.Errorf("stats after faults: %+v", st)
	}
}

// TestRandomFaultsDuringUploads pushes paths through a server failing half
// of all API and storage requests, retrying each step, and checks the end
// state is exactly what a fault-free run gives.
func TestRandomFaultsDuringUploads(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{
		Caches:    []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}},
		FaultRate: 0.5,
		Seed:      3,
	})
	base := srv.URL() + api("c")
	// retry repeats a step until it gets an answer that is not a fault,
	// and requires that answer to be 200.
	retry := func(what string, f func() outcome) outcome {
		t.Helper()
		for i := 0; i < 200; i++ {
			o := f()
			switch o.status {
			case -1, 429, 500, 502, 503:
				continue
			case 200:
				return o
			}
			t.Fatalf("%s: %d %s", what, o.status, o.body)
		}
		t.Fatalf("%s: still failing after 200 attempts", what)
		return outcome{}
	}
	jsonHdr := []string{"Content-Type", "application/json"}
	var total int64
	var hashes []string
	for i := 0; i < 5; i++ {
		p := newTestPath(t, "p"+itoa(i), "contents "+itoa(i))
		hashes = append(hashes, p.hash)
		total += int64(len(p.compressed))
		var created struct{ NarID, UploadID string }
		o := retry("create", func() outcome { return try(t, "POST", base+"/multipart-nar?compression=zst", "W", nil) })
		response{body: string(o.body)}.decode(t, &created)
		sum := md5b64(p.compressed)
		var presigned struct{ UploadURL string }
		o = retry("presign", func() outcome {
			return try(t, "POST", base+"/multipart-nar/"+created.NarID+"?uploadId="+created.UploadID+"&partNumber=1", "W",
				mustJSON(map[string]string{"contentMD5": sum}), jsonHdr...)
		})
		response{body: string(o.body)}.decode(t, &presigned)
		o = retry("put", func() outcome { return try(t, "PUT", presigned.UploadURL, "", p.compressed, "Content-MD5", sum) })
		u := &upload{cache: "c", narID: created.NarID, uploadID: created.UploadID, etags: []string{o.etag}}
		retry("complete", func() outcome {
			return try(t, "POST", base+"/multipart-nar/"+u.narID+"/complete?uploadId="+u.uploadID, "W",
				mustJSON(u.completeBody(p.create(nil))), jsonHdr...)
		})
	}
	o := retry("bulk", func() outcome { return try(t, "POST", base+"/narinfo", "W", mustJSON(hashes), jsonHdr...) })
	if string(o.body) != "[]" {
		t.Errorf("missing after push: %s", o.body)
	}
	st := srv.Stats()
	if st.UploadsStarted != 5 || st.UploadsCompleted != 5 || st.PartsUploaded != 5 || st.PutBytes != total ||
		st.DuplicateCompletes != 0 || len(st.Rejections) != 0 || st.BulkQueryCalls != 1 {
		t.Errorf("end state differs from a fault-free run: %+v", st)
	}
	requests := 0
	for _, n := range st.Requests {
		requests += n
	}
	if st.FaultsInjected < 10 || requests != 21+st.FaultsInjected {
		t.Errorf("%d faults in %d requests, want 21 successful requests plus the faults", st.FaultsInjected, requests)
	}
	if paths := srv.StorePaths("c"); len(paths) != 5 {
		t.Errorf("%d paths stored", len(paths))
	}
}

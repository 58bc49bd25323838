package cachixserver_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// fakeClock is a settable clock for pin retention tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock forward.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pinBody is a pin creation body with keep given as raw JSON.
func pinBody(name, storePath, keep string, artifacts ...string) map[string]any {
	if artifacts == nil {
		artifacts = []string{}
	}
	return map[string]any{"name": name, "storePath": storePath, "artifacts": artifacts, "keep": json.RawMessage(keep)}
}

// TestPinsCreateAndList checks pins are recorded with their revisions and
// listed in the shape create-pin-refs and kup read.
func TestPinsCreateAndList(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv := startServer(t, cachixserver.Config{
		Now:    clock.Now,
		Caches: []cachixserver.CacheConfig{{Name: "c", Public: true, WriteTokens: []string{"W"}, ReadTokens: []string{"R"}}},
	})
	c := client{t: t, base: srv.URL(), token: "W"}
	var ps []testPath
	for i := 0; i < 3; i++ {
		p := newTestPath(t, "rev"+itoa(i), "revision "+itoa(i))
		c.push("c", p, nil)
		ps = append(ps, p)
	}

	c.do("POST", api("c")+"/pin", pinBody("plain", ps[0].path(), "null", "bin/hello", "/etc/x.conf")).want(t, 200)
	c.do("POST", api("c")+"/pin", pinBody("days", ps[0].path(), `{"tag":"Days","contents":3}`)).want(t, 200)
	c.do("POST", api("c")+"/pin", pinBody("forever", ps[0].path(), `{"tag":"Forever"}`)).want(t, 200)
	for _, p := range ps {
		clock.advance(time.Minute)
		c.do("POST", api("c")+"/pin", pinBody("revs", p.path(), `{"tag":"Revisions","contents":2}`)).want(t, 200)
	}

	// The list, read without a token (public cache), as raw JSON.
	body := client{t: t, base: srv.URL()}.do("GET", api("c")+"/pin", nil).want(t, 200).body
	var list []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("%d pins listed: %s", len(list), body)
	}
	wantKeep := map[string]string{
		"days": `{"contents":3,"tag":"Days"}`, "forever": `{"tag":"Forever"}`,
		"plain": `null`, "revs": `{"contents":2,"tag":"Revisions"}`,
	}
	for i, name := range []string{"days", "forever", "plain", "revs"} {
		pin := list[i]
		if len(pin) != 4 || string(pin["name"]) != `"`+name+`"` || string(pin["keep"]) != wantKeep[name] {
			t.Errorf("pin %d: %s", i, mustJSON(pin))
		}
		var last map[string]json.RawMessage
		if err := json.Unmarshal(pin["lastRevision"], &last); err != nil || len(last) != 3 {
			t.Errorf("lastRevision of %s: %s", name, pin["lastRevision"])
		}
		for _, ts := range []json.RawMessage{pin["createdOn"], last["createdOn"]} {
			var s string
			if err := json.Unmarshal(ts, &s); err != nil {
				t.Fatal(err)
			}
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				t.Errorf("createdOn %s is not RFC 3339: %v", s, err)
			}
		}
	}
	var plain struct {
		LastRevision struct {
			StorePath string   `json:"storePath"`
			Artifacts []string `json:"artifacts"`
		} `json:"lastRevision"`
	}
	if err := json.Unmarshal(mustJSON(list[2]), &plain); err != nil {
		t.Fatal(err)
	}
	if plain.LastRevision.StorePath != ps[0].path() || strings.Join(plain.LastRevision.Artifacts, ",") != "bin/hello,/etc/x.conf" {
		t.Errorf("plain pin: %+v", plain)
	}

	// Revisions 2 keeps the last two of three.
	pins := srv.Pins("c")
	revs := pins[3]
	if revs.Name != "revs" || len(revs.Revisions) != 2 || revs.Revisions[0].StorePath != ps[1].path() ||
		revs.Revisions[1].StorePath != ps[2].path() || revs.Keep == nil || *revs.Keep != (cachixserver.Keep{Tag: "Revisions", Contents: 2}) {
		t.Errorf("revs pin: %+v", revs)
	}
	if st := srv.Stats(); st.PinsCreated != 6 {
		t.Errorf("PinsCreated = %d", st.PinsCreated)
	}

	// A read-only token may list but not pin.
	client{t: t, base: srv.URL(), token: "R"}.do("GET", api("c")+"/pin", nil).want(t, 200)
	client{t: t, base: srv.URL(), token: "R"}.do("POST", api("c")+"/pin", pinBody("x", ps[0].path(), "null")).want(t, 401)
}

// TestPinKeepDays checks Days retention drops revisions older than n days
// but always keeps the newest.
func TestPinKeepDays(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := startServer(t, cachixserver.Config{Now: clock.Now, Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "p", "p")
	c.push("c", p, nil)
	pin := func() {
		c.do("POST", api("c")+"/pin", pinBody("d", p.path(), `{"tag":"Days","contents":1}`)).want(t, 200)
	}
	pin()
	clock.advance(2 * 24 * time.Hour)
	pin()
	if n := len(srv.Pins("c")[0].Revisions); n != 1 {
		t.Errorf("%d revisions after two days, want 1", n)
	}
	clock.advance(time.Hour)
	pin()
	if n := len(srv.Pins("c")[0].Revisions); n != 2 {
		t.Errorf("%d revisions within a day, want 2", n)
	}
}

// TestPinRejections checks the strict decoding of pin bodies and that a
// path must be in the cache, with its closure, to be pinned.
func TestPinRejections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "pinned", "pinned")
	c.push("c", p, nil)
	orphan := newTestPath(t, "orphan", "orphan", randomHash(t)+"-never-pushed")
	c.push("c", orphan, nil)
	rejected := newTestPath(t, "rejected", "rejected")
	srv.RejectPath(rejected.hash)
	u := c.start("c", "zst")
	c.putAll(u, rejected.compressed, 0)
	c.complete(u, u.completeBody(rejected.create(nil))).want(t, 400)

	withField := func(k string, v any) map[string]any {
		b := pinBody("n", p.path(), "null")
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name string
		body any
		want string
	}{
		{"forever with contents", pinBody("n", p.path(), `{"tag":"Forever","contents":1}`), "unknown field"},
		{"days without contents", pinBody("n", p.path(), `{"tag":"Days"}`), "missing field"},
		{"unknown tag", pinBody("n", p.path(), `{"tag":"Weeks","contents":1}`), "unknown tag"},
		{"lower-case tag", pinBody("n", p.path(), `{"tag":"days","contents":1}`), "unknown tag"},
		{"contents as string", pinBody("n", p.path(), `{"tag":"Days","contents":"3"}`), "expected an integer"},
		{"contents fractional", pinBody("n", p.path(), `{"tag":"Days","contents":1.5}`), "expected an integer"},
		{"contents zero", pinBody("n", p.path(), `{"tag":"Revisions","contents":0}`), "positive"},
		{"contents negative", pinBody("n", p.path(), `{"tag":"Days","contents":-1}`), "positive"},
		{"keep as string", pinBody("n", p.path(), `"Forever"`), "keep"},
		{"keep untagged", pinBody("n", p.path(), `{"Days":3}`), "missing field \"tag\""},
		{"keep with extra field", pinBody("n", p.path(), `{"tag":"Days","contents":3,"x":1}`), "unknown field"},
		{"keep missing", withField("keep", nil), `missing field(s) "keep"`},
		{"artifacts missing", withField("artifacts", nil), `missing field(s) "artifacts"`},
		{"artifacts null", withField("artifacts", json.RawMessage("null")), "expected an array"},
		{"artifacts not strings", withField("artifacts", []int{1}), "expected a string"},
		{"unknown field", withField("keepRevisions", 3), "unknown field"},
		{"empty name", withField("name", ""), "pin name"},
		{"store path as base name", withField("storePath", p.base()), "full path"},
		{"store path inside", withField("storePath", p.path()+"/bin/x"), "storePath"},
		{"store path with another name", withField("storePath", "/nix/store/"+p.hash+"-other"), "not in binary cache"},
		{"path not in cache", withField("storePath", newTestPath(t, "absent", "absent").path()), "not in binary cache"},
		{"path whose completion failed", withField("storePath", rejected.path()), "not in binary cache"},
		{"closure incomplete", withField("storePath", orphan.path()), "closure is incomplete"},
	}
	for _, tt := range tests {
		r := c.do("POST", api("c")+"/pin", tt.body)
		if r.status != 400 || !strings.Contains(r.body, tt.want) {
			t.Errorf("%s: %d %q, want 400 containing %q", tt.name, r.status, r.body, tt.want)
		}
	}
	if pins := srv.Pins("c"); len(pins) != 0 {
		t.Errorf("rejected pins were created: %+v", pins)
	}
	c.do("POST", api("c")+"/pin", pinBody("n", p.path(), "null")).want(t, 200)
}

// TestBulkQuery checks the bulk missing query's limits and input rules.
func TestBulkQuery(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{{Name: "c", WriteTokens: []string{"W"}}}})
	c := client{t: t, base: srv.URL(), token: "W"}
	p := newTestPath(t, "present", "present")
	c.push("c", p, nil)

	if got := c.missing("c"); got == nil || len(got) != 0 {
		t.Errorf("empty query: %v", got)
	}
	absent := randomHash(t)
	if got := c.missing("c", absent, p.hash, absent); strings.Join(got, ",") != absent+","+absent {
		t.Errorf("missing = %v, want the absent hash twice in input order", got)
	}
	many := make([]string, cachixserver.MaxBulkHashes)
	for i := range many {
		many[i] = absent
	}
	if got := c.missing("c", many...); len(got) != cachixserver.MaxBulkHashes {
		t.Errorf("%d missing of %d", len(got), len(many))
	}
	before := srv.Stats()
	tests := []struct {
		name string
		body any
		want string
	}{
		{"too many", append(many, absent), "too many hashes"},
		{"short hash", []string{absent[:31]}, "32 nix-base32"},
		{"not nix32", []string{"e" + absent[1:]}, "not nix-base32"},
		{"full path", []string{p.path()}, "32 nix-base32"},
		{"base name", []string{p.base()}, "32 nix-base32"},
		{"null element", []any{nil}, "expected a string"},
		{"number", []any{1}, "expected a string"},
		{"null", json.RawMessage("null"), "got null"},
		{"object", map[string]string{"hash": absent}, "expected a JSON array"},
	}
	for _, tt := range tests {
		r := c.do("POST", api("c")+"/narinfo", tt.body)
		if r.status != 400 || !strings.Contains(r.body, tt.want) {
			t.Errorf("%s: %d %q, want 400 containing %q", tt.name, r.status, r.body, tt.want)
		}
	}
	after := srv.Stats()
	if after.BulkQueryCalls != before.BulkQueryCalls || len(after.Rejections) != len(before.Rejections)+len(tests) {
		t.Errorf("rejected queries counted as calls (%d→%d) or not as rejections (%d→%d)",
			before.BulkQueryCalls, after.BulkQueryCalls, len(before.Rejections), len(after.Rejections))
	}
	if before.BulkQueryCalls != 3 || before.BulkQueryHashes != 3+cachixserver.MaxBulkHashes {
		t.Errorf("bulk counters: %d calls, %d hashes", before.BulkQueryCalls, before.BulkQueryHashes)
	}
}

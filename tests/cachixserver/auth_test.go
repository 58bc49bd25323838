package cachixserver_test

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/cachix-select/cachix-select/tests/cachixserver"
)

// TestAuthMatrix checks who may read and write which cache, with Bearer
// tokens and HTTP Basic (token as password, as Nix sends from netrc).
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "priv", WriteTokens: []string{"W"}, ReadTokens: []string{"R"}},
		{Name: "pub", Public: true, WriteTokens: []string{"PW"}},
	}})
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	creds := map[string]string{ // name → Authorization header ("" = none)
		"none":          "",
		"empty bearer":  "Bearer ",
		"unknown":       "Bearer nope",
		"R":             "Bearer R",
		"W":             "Bearer W",
		"PW":            "Bearer PW",
		"basic W":       basic("", "W"),
		"basic R":       basic("anyone", "R"),
		"basic unknown": basic("", "nope"),
		"odd scheme":    "Token W",
	}
	type op struct {
		method, path string
		body         any
		write        bool
	}
	ops := func(cache string) map[string]op {
		return map[string]op{
			"cache info":     {method: "GET", path: api(cache)},
			"bulk query":     {method: "POST", path: api(cache) + "/narinfo", body: []string{}},
			"pin list":       {method: "GET", path: api(cache) + "/pin"},
			"nix-cache-info": {method: "GET", path: "/binary-cache/" + cache + "/nix-cache-info"},
			"create upload":  {method: "POST", path: api(cache) + "/multipart-nar?compression=zst", write: true},
		}
	}
	// want returns the expected status of a request.
	want := func(cache, cred string, write bool) int {
		switch cache {
		case "nope":
			switch cred {
			case "R", "W", "PW", "basic W", "basic R":
				return 404
			}
			return 401
		case "priv":
			switch cred {
			case "W", "basic W":
				return 200
			case "R", "basic R":
				if !write {
					return 200
				}
			}
			return 401
		default: // pub
			switch cred {
			case "PW":
				return 200
			case "none", "empty bearer", "R", "W", "basic W", "basic R":
				if !write {
					return 200
				}
			}
			return 401
		}
	}
	for _, cache := range []string{"priv", "pub", "nope"} {
		for opName, o := range ops(cache) {
			for credName, header := range creds {
				t.Run(fmt.Sprintf("%s/%s/%s", cache, opName, credName), func(t *testing.T) {
					t.Parallel()
					c := client{t: t, base: srv.URL()}
					r := c.do(o.method, o.path, o.body, "Authorization", header)
					w := want(cache, credName, o.write)
					if r.status != w {
						t.Fatalf("status %d, want %d (%s)", r.status, w, r.body)
					}
					if w == 401 {
						msg := "Binary cache " + cache + " doesn't exist or you're not authorized to access. " +
							"Please check the name for typos and/or provide an auth token. " +
							"Contact support on https://cachix.org if you're stuck!"
						if r.body != msg {
							t.Errorf("401 body %q", r.body)
						}
					}
				})
			}
		}
	}
}

// TestCacheInfoPermission checks the permission field follows the caller.
func TestCacheInfoPermission(t *testing.T) {
	t.Parallel()
	srv := startServer(t, cachixserver.Config{Caches: []cachixserver.CacheConfig{
		{Name: "priv", WriteTokens: []string{"W"}, ReadTokens: []string{"R"}},
		{Name: "pub", Public: true, WriteTokens: []string{"PW"}},
	}})
	tests := []struct {
		cache, token, want string
	}{
		{"priv", "W", "Write"},
		{"priv", "R", "Read"},
		{"pub", "", "Read"},
		{"pub", "PW", "Write"},
		{"pub", "W", "Read"},
	}
	for _, tt := range tests {
		var info struct {
			Permission string `json:"permission"`
			IsPublic   bool   `json:"isPublic"`
		}
		client{t: t, base: srv.URL(), token: tt.token}.do("GET", api(tt.cache), nil).want(t, 200).decode(t, &info)
		if info.Permission != tt.want || info.IsPublic != (tt.cache == "pub") {
			t.Errorf("%s with %q: %+v, want permission %s", tt.cache, tt.token, info, tt.want)
		}
	}
	before := srv.Stats()
	client{t: t, base: srv.URL()}.do("GET", api("priv"), nil).want(t, 401)
	client{t: t, base: srv.URL(), token: "W"}.do("GET", api("nope"), nil).want(t, 404)
	after := srv.Stats()
	if after.AuthFailures != before.AuthFailures+1 || after.NotFoundCaches != before.NotFoundCaches+1 {
		t.Errorf("auth counters: before %+v after %+v", before, after)
	}
}

package cachix_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/backend"
	"github.com/cachix-select/cachix-select/pushlib/cachix"
)

// TestCreatePinBody checks the exact body of POST /cache/NAME/pin for each
// retention policy: artifacts is [] rather than null, keep is null or a
// tagged object.
func TestCreatePinBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pin  backend.Pin
		want string
	}{
		{name: "default keep", pin: backend.Pin{Name: "v1.0", StorePath: vectorPath},
			want: `{"name":"v1.0","storePath":"` + vectorPath + `","artifacts":[],"keep":null}`},
		{name: "revisions", pin: backend.Pin{Name: "v1.0", StorePath: vectorPath,
			Artifacts: []string{"bin/hello", "/etc/hello.conf"}, Keep: &backend.Keep{Kind: "revisions", Value: 10}},
			want: `{"name":"v1.0","storePath":"` + vectorPath + `","artifacts":["bin/hello","/etc/hello.conf"],` +
				`"keep":{"tag":"Revisions","contents":10}}`},
		{name: "days", pin: backend.Pin{Name: "x", StorePath: vectorPath, Keep: &backend.Keep{Kind: "days", Value: 3}},
			want: `{"name":"x","storePath":"` + vectorPath + `","artifacts":[],"keep":{"tag":"Days","contents":3}}`},
		{name: "forever", pin: backend.Pin{Name: "x", StorePath: vectorPath, Keep: &backend.Keep{Kind: "forever"}},
			want: `{"name":"x","storePath":"` + vectorPath + `","artifacts":[],"keep":{"tag":"Forever"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu   sync.Mutex
				body []byte
				hdr  http.Header
			)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != apiPrefix+"/pin" {
					http.Error(w, "unexpected", http.StatusTeapot)
					return
				}
				mu.Lock()
				body, _ = io.ReadAll(r.Body)
				hdr = r.Header.Clone()
				mu.Unlock()
			}))
			b := newBackend(t, srv.URL, nil)
			if err := b.CreatePin(t.Context(), tc.pin); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if string(body) != tc.want {
				t.Errorf("body\n got %s\nwant %s", body, tc.want)
			}
			if hdr.Get("Authorization") != "Bearer "+testToken || hdr.Get("Content-Type") != jsonBodyType {
				t.Errorf("headers %v lack the token or the JSON content type", hdr)
			}
		})
	}
}

// TestCreatePinRefusals checks what CreatePin refuses before sending.
func TestCreatePinRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string
		pin    backend.Pin
		wantIs error
		want   string
	}{
		{name: "no token", pin: backend.Pin{Name: "x", StorePath: vectorPath}, wantIs: backend.ErrUnauthorized,
			want: "needs an auth token"},
		{name: "unknown keep", token: testToken,
			pin:  backend.Pin{Name: "x", StorePath: vectorPath, Keep: &backend.Keep{Kind: "weeks", Value: 1}},
			want: "unknown pin retention"},
		{name: "no name", token: testToken, pin: backend.Pin{StorePath: vectorPath}, want: "no name"},
		{name: "other store", token: testToken,
			pin:  backend.Pin{Name: "x", StorePath: "/gnu/store/0123456789abcdfghijklmnpqrsvwxyz-hello"},
			want: "/nix/store", wantIs: backend.ErrNotSupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
			b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Token = tc.token })
			err := b.CreatePin(t.Context(), tc.pin)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if n.Load() != 0 {
				t.Error("a request was sent")
			}
		})
	}
}

// TestListPins checks decoding of the pin listing, without a token.
func TestListPins(t *testing.T) {
	t.Parallel()
	const answer = `[
	  {"name":"laptop-neovim","createdOn":"2025-01-02T03:04:05Z","keep":{"tag":"Revisions","contents":3},
	   "lastRevision":{"storePath":"` + vectorPath + `","artifacts":["bin/hello"],"createdOn":"2025-02-03T04:05:06Z"}},
	  {"name":"forever","createdOn":"2025-01-01T00:00:00Z","keep":{"tag":"Forever"},"lastRevision":null},
	  {"name":"default","createdOn":"2025-01-01T00:00:00Z","keep":null,
	   "lastRevision":{"storePath":"` + vectorGlibc + `","artifacts":[],"createdOn":"2025-01-01T00:00:00Z"}}
	]`
	var sawAuth atomic.Bool
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok {
			sawAuth.Store(true)
		}
		if r.Method != http.MethodGet || r.URL.Path != apiPrefix+"/pin" {
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	b := newBackend(t, srv.URL, func(o *cachix.Options) { o.Token = "" })
	pins, err := b.ListPins(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if sawAuth.Load() {
		t.Error("an Authorization header was sent without a token")
	}
	if len(pins) != 3 {
		t.Fatalf("%d pins, want 3", len(pins))
	}
	p := pins[0]
	if p.Name != "laptop-neovim" || p.CreatedOn != "2025-01-02T03:04:05Z" ||
		p.Keep == nil || *p.Keep != (backend.Keep{Kind: "revisions", Value: 3}) ||
		p.LastRevision == nil || p.LastRevision.StorePath != vectorPath ||
		strings.Join(p.LastRevision.Artifacts, ",") != "bin/hello" || p.LastRevision.CreatedOn != "2025-02-03T04:05:06Z" {
		t.Errorf("pin 0 = %+v (keep %+v, last %+v)", p, p.Keep, p.LastRevision)
	}
	if k := pins[1].Keep; k == nil || k.Kind != "forever" || pins[1].LastRevision != nil {
		t.Errorf("pin 1 = %+v", pins[1])
	}
	if pins[2].Keep != nil || pins[2].LastRevision.StorePath != vectorGlibc {
		t.Errorf("pin 2 = %+v", pins[2])
	}
}

// TestListPinsNotFound checks the error mapping of the listing.
func TestListPinsNotFound(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	b := newBackend(t, srv.URL, nil)
	_, err := b.ListPins(t.Context())
	if !errors.Is(err, backend.ErrCacheNotFound) {
		t.Errorf("error %v is not ErrCacheNotFound", err)
	}
}

// TestListPinsRefused: a listing refused is a read refused ("cannot read
// it"), and without a token the message names every place one may come
// from; a pin refused is a write refused.
func TestListPinsRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	_, err := newBackend(t, srv.URL, nil).ListPins(t.Context())
	if !errors.Is(err, backend.ErrUnauthorized) || !strings.Contains(err.Error(), "this token cannot read it (token from $CACHIX_AUTH_TOKEN)") {
		t.Errorf("wrong token: %v", err)
	}
	_, err = newBackend(t, srv.URL, func(o *cachix.Options) { o.Token, o.TokenSource = "", "" }).ListPins(t.Context())
	if err == nil || !strings.Contains(err.Error(), "--auth-token-file, $CACHIX_AUTH_TOKEN, the authToken of cachix.dhall (or --config FILE)") {
		t.Errorf("no token: %v", err)
	}
	err = newBackend(t, srv.URL, nil).CreatePin(t.Context(), backend.Pin{Name: "p", StorePath: "/nix/store/00000000000000000000000000000000-x"})
	if !errors.Is(err, backend.ErrUnauthorized) || !strings.Contains(err.Error(), "this token cannot write to it") {
		t.Errorf("pin: %v", err)
	}
}

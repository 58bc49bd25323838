package s3cache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/internal/stall"
)

func TestHashFraction(t *testing.T) {
	t.Parallel()
	if f := hashFraction("00000000000000000000000000000000"); f != 0 {
		t.Errorf("zero hash: %v", f)
	}
	if f := hashFraction("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"); f < 0.999 || f >= 1 {
		t.Errorf("top hash: %v", f)
	}
	if a, b := hashFraction("01234zzzzzzzzzzzzzzzzzzzzzzzzzzz"), hashFraction("01235000000000000000000000000000"); a >= b {
		t.Errorf("not monotonic: %v >= %v", a, b)
	}
	if f := hashFraction("h0000000000000000000000000000000"); f != 0.5 {
		t.Errorf("h… = %v, want 0.5 (h is digit 16)", f)
	}
}

func TestKeepListing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name           string
		pages          int
		start, at, end float64
		left           int
		want           bool
	}{
		// A page covered half the space: one more page beats HEADing 1,000.
		{"small bucket, big closure", 1, 0, 0.5, 1, 1000, true},
		// A page covered 1 %: ~99 more pages cost more than 30 HEADs.
		{"big bucket, small closure", 1, 0, 0.01, 1, 30, false},
		// A page covered 1 % but 20,000 paths are left: 99 pages cost less.
		{"big bucket, big closure", 1, 0, 0.01, 1, 20000, true},
		{"no progress yet", 1, 0.3, 0.3, 1, 10, true},
	} {
		if got := keepListing(tt.pages, tt.start, tt.at, tt.end, tt.left); got != tt.want {
			t.Errorf("%s: keepListing = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsNarName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"nar/7ba635483f58836f3efbd2f9076eed30e18b5f18fbc450a7c1d24cbe5bddb285.nar.zst": true,
		"nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz":              true,
		"nar/7ba635483f58836f3efbd2f9076eed30e18b5f18fbc450a7c1d24cbe5bddb285.nar":     true,
		"nar/short.nar.zst": false,
		"other/7ba635483f58836f3efbd2f9076eed30e18b5f18fbc450a7c1d24cbe5bddb285.nar": false,
		"nar/7ba635483f58836f3efbd2f9076eed30e18b5f18fbc450a7c1d24cbe5bddb285.tar":   false,
	} {
		if got := isNarName(name); got != want {
			t.Errorf("isNarName(%s) = %v", name, got)
		}
	}
}

// A request that asks the service to copy an object may wait for its
// answer longer than the stall timeout, by the object's size at
// serverCopyRate; any other request may not.
func TestServerWorkOutlastsTheStallTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(600 * time.Millisecond): // copying, silent
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "<CompleteMultipartUploadResult/>")
	}))
	t.Cleanup(srv.Close)
	rt := &roundTripper{base: http.DefaultTransport, stall: 200 * time.Millisecond, connect: time.Second}
	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/bucket/key?uploadId=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	var se *stall.Error
	if err := get(t.Context()); !errors.As(err, &se) || se.Connecting {
		t.Fatalf("a plain request silent for 0.6 s with a 0.2 s stall timeout: %v, want a stall", err)
	}
	// 1 GiB at 16 MiB/s: 64 s more.
	if err := get(withServerWork(t.Context(), 1<<30)); err != nil {
		t.Fatalf("a copy of 1 GiB silent for 0.6 s: %v", err)
	}
}

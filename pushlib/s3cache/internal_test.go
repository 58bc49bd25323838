package s3cache

import "testing"

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

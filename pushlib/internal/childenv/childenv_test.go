package childenv

import (
	"slices"
	"testing"
)

func TestWithout(t *testing.T) {
	env := []string{"PATH=/bin", "CACHIX_AUTH_TOKEN=tok", "CACHIX_AUTH_TOKEN_FILE=/run/t", "AWS_SECRET_ACCESS_KEY=s",
		"AWS_REGION=eu", "CACHIX_SIGNING_KEY=k", "AWS_ACCESS_KEY_ID=id", "AWS_SESSION_TOKEN=st", "HOME=/root", "CACHIX_AUTH_TOKEN"}
	got := Without(env)
	want := []string{"PATH=/bin", "CACHIX_AUTH_TOKEN_FILE=/run/t", "AWS_REGION=eu", "HOME=/root"}
	if !slices.Equal(got, want) {
		t.Errorf("Without: %q, want %q", got, want)
	}
}

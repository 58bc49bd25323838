package s3url_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/s3cache/s3url"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url  string
		want s3url.Location
		str  string
	}{
		{"s3://my-cache", s3url.Location{Bucket: "my-cache", Region: "us-east-1", Secure: true}, "s3://my-cache"},
		{"s3://c.example?region=eu-west-1&profile=ci", s3url.Location{Bucket: "c.example", Region: "eu-west-1", Secure: true, Profile: "ci"},
			"s3://c.example?profile=ci&region=eu-west-1"},
		{"s3://cache?endpoint=127.0.0.1:9000&scheme=http&prefix=/nix/x/",
			s3url.Location{Bucket: "cache", Region: "us-east-1", Endpoint: "127.0.0.1:9000", Prefix: "nix/x/"},
			"s3://cache?endpoint=127.0.0.1:9000&prefix=nix/x&scheme=http"},
		// Nix's newer form: the endpoint as a URL; its scheme counts.
		{"s3://cache?endpoint=http://minio.local:9000", s3url.Location{Bucket: "cache", Region: "us-east-1", Endpoint: "minio.local:9000"}, ""},
		{"s3://cache?endpoint=https://r2.example.com/&scheme=https&buffer-size=16777216&multipart-upload=true",
			s3url.Location{Bucket: "cache", Region: "us-east-1", Endpoint: "r2.example.com", Secure: true, PartSize: 16 << 20}, ""},
		// A substituter URL copied as the target: its substituting settings are ignored.
		{"s3://cache?region=eu-west-1&priority=30&want-mass-query=true&trusted=1",
			s3url.Location{Bucket: "cache", Region: "eu-west-1", Secure: true}, "s3://cache?region=eu-west-1"},
	} {
		got, err := s3url.Parse(tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.url, got, tt.want)
		}
		if tt.str != "" && got.String() != tt.str {
			t.Errorf("%s: String() = %s, want %s", tt.url, got.String(), tt.str)
		}
		// The canonical form parses back to the same location (buffer-size aside).
		again, err := s3url.Parse(got.String())
		again.PartSize = got.PartSize
		if err != nil || again != got {
			t.Errorf("%s: canonical %s parses to %+v, %v", tt.url, got.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ url, want string }{
		{"s3://", "names no bucket"},
		{"s3://ab", "not a valid bucket name"},
		{"s3://Bad_Bucket", "not a valid bucket name"},
		{"s3://cache/sub/dir", "?prefix=sub/dir"},
		{"s3://cache?foo=1", `unknown parameter "foo"`},
		{"s3://cache?compression=xz", "--compression-method"},
		{"s3://cache?secret-key=/run/k", "--signing-key-file"},
		{"s3://cache?scheme=ftp&endpoint=h", "scheme must be http or https"},
		{"s3://cache?scheme=http", "needs an endpoint"},
		{"s3://cache?endpoint=h:0", "port"},
		{"s3://cache?endpoint=h/path", "host[:port]"},
		{"s3://cache?endpoint=https://h&scheme=http", "the endpoint says https but scheme says http"},
		{"s3://cache?region=EU WEST", "region"},
		{"s3://cache?region=", "is empty"},
		{"s3://cache?region=a&region=b", "given 2 times"},
		{"s3://cache?prefix=a/../b", "prefix"},
		{"s3://cache?buffer-size=1024", "buffer-size"},
		{"s3://cache?multipart-upload=yes", "multipart-upload"},
		{"s3://AKIA:secret@cache", "credentials do not belong in the URL"},
	} {
		_, err := s3url.Parse(tt.url)
		if !errors.Is(err, s3url.ErrBadURL) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an ErrBadURL saying %q", tt.url, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") && !strings.Contains(tt.url, "secret-key") {
			t.Errorf("%s: the error repeats a value from the URL: %v", tt.url, err)
		}
	}
}

package target_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/target"
)

// TestPrecedence pins the one rule every setting follows: the command line
// over the manifest over the environment over cachix.dhall (for S3 keys:
// the shared credentials file), each layer consulted only when every layer
// above it says nothing. For each setting it tries every combination of
// the layers that can give it and expects the highest one's value (or the
// default when none does).
func TestPrecedence(t *testing.T) {
	t.Parallel()
	keys := map[string]string{} // layer → bare secret key
	pubs := map[string]string{} // public key → layer
	for i, l := range []string{"flag", "manifest", "env", "config"} {
		secret, public := seedKey(byte(10 + i))
		keys[l], pubs[public] = secret, l
	}
	type setting struct {
		name   string
		layers []string // the layers that can give it, highest first
		set    func(f *fixture, layer string)
		got    func(t *testing.T, c *target.Target) string // the layer whose value won, or "default"
		s3     bool                                        // the cache is an s3:// one
	}
	settings := []setting{
		{
			name: "auth token", layers: []string{"flag", "manifest", "env", "config"},
			set: func(f *fixture, l string) {
				switch l {
				case "flag":
					f.flags.AuthTokenFile = f.file("flag-token", "flag", 0o600)
				case "manifest":
					f.manifest.AuthTokenFile = f.file("manifest-token", "manifest", 0o600)
				case "env":
					f.env["CACHIX_AUTH_TOKEN"] = "env"
				case "config":
					f.dhall(`{ authToken = "config" }`)
				}
			},
			got: func(t *testing.T, c *target.Target) string { return orNone(c.Token) },
		},
		{
			name: "signing key", layers: []string{"flag", "manifest", "env", "config"},
			set: func(f *fixture, l string) {
				switch l {
				case "flag":
					f.flags.SigningKeyFile = f.file("flag-key", keys[l], 0o600)
				case "manifest":
					f.manifest.SigningKeyFile = f.file("manifest-key", keys[l], 0o600)
				case "env":
					f.env["CACHIX_SIGNING_KEY"] = keys[l]
				case "config":
					f.dhall(fmt.Sprintf(`{ binaryCaches = [ { name = "mycache", secretKey = %q } ] }`, keys[l]))
				}
			},
			got: func(t *testing.T, c *target.Target) string {
				if c.SigningKey == nil {
					return "default"
				}
				return pubs[c.SigningKey.PublicKeyBare()]
			},
		},
		{
			name: "Cachix host", layers: []string{"flag", "manifest", "config"},
			set: func(f *fixture, l string) {
				switch l {
				case "flag":
					f.flags.Host = "https://flag.example/"
				case "manifest":
					f.manifest.Host = "https://manifest.example"
				case "config":
					f.dhall(`{ hostname = "https://config.example" }`)
				}
			},
			got: func(t *testing.T, c *target.Target) string {
				if h := host(c); h != target.DefaultCachixHost {
					return map[string]string{"https://flag.example": "flag", "https://manifest.example": "manifest",
						"https://config.example": "config"}[h]
				}
				return "default"
			},
		},
		{
			name: "compression method", layers: []string{"flag", "manifest"},
			set: func(f *fixture, l string) {
				map[string]*target.Layer{"flag": &f.flags, "manifest": &f.manifest}[l].Compression =
					map[string]string{"flag": "xz", "manifest": "zstd"}[l]
			},
			got: func(t *testing.T, c *target.Target) string {
				if c.Compression == nil {
					return "default"
				}
				return map[string]string{"xz": "flag", "zstd": "manifest"}[string(c.Compression.Method)]
			},
		},
		{
			name: "compression level", layers: []string{"flag", "manifest"},
			set: func(f *fixture, l string) {
				n := map[string]int{"flag": 3, "manifest": 7}[l]
				map[string]*target.Layer{"flag": &f.flags, "manifest": &f.manifest}[l].CompressionLevel = &n
			},
			got: func(t *testing.T, c *target.Target) string {
				if c.Compression == nil {
					return "default"
				}
				return map[int]string{3: "flag", 7: "manifest"}[c.Compression.Level]
			},
		},
		{
			name: "jobs", layers: []string{"flag", "manifest"},
			set: func(f *fixture, l string) {
				map[string]*target.Layer{"flag": &f.flags, "manifest": &f.manifest}[l].Jobs = map[string]int{"flag": 3, "manifest": 5}[l]
			},
			got: func(t *testing.T, c *target.Target) string {
				return map[int]string{3: "flag", 5: "manifest", target.DefaultJobs: "default"}[c.Jobs]
			},
		},
		{
			name: "S3 keys", layers: []string{"flag", "env", "config"}, s3: true,
			set: func(f *fixture, l string) {
				switch l {
				case "flag":
					f.flags.S3CredentialsFile = f.file("s3-credentials", "[default]\naws_access_key_id = flag\naws_secret_access_key = s\n", 0o600)
				case "env":
					f.env["AWS_ACCESS_KEY_ID"], f.env["AWS_SECRET_ACCESS_KEY"] = "env", "s"
				case "config":
					f.file("home/.aws/credentials", "[default]\naws_access_key_id = config\naws_secret_access_key = s\n", 0o600)
				}
			},
			got: func(t *testing.T, c *target.Target) string {
				if c.S3.Anonymous() {
					return "default"
				}
				v, err := c.S3.Provider().GetWithContext(nil)
				if err != nil {
					t.Fatal(err)
				}
				return v.AccessKeyID
			},
		},
	}
	for _, s := range settings {
		for mask := 0; mask < 1<<len(s.layers); mask++ {
			var given []string
			want := "default"
			for i, l := range s.layers {
				if mask&(1<<(len(s.layers)-1-i)) != 0 {
					given = append(given, l)
					if want == "default" {
						want = l
					}
				}
			}
			t.Run(s.name+"/"+strconv.Itoa(mask), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				f.env["HOME"] = filepath.Join(f.dir, "home")
				if s.s3 {
					f.flags.Cache, f.flags.URL = "", "s3://bucket?endpoint=127.0.0.1:9"
					f.opts.ReadOnly = len(given) == 0 // no keys at all: a dry run's anonymous reads
				}
				for _, l := range given {
					s.set(f, l)
				}
				c := f.resolve()
				if got := s.got(t, c); got != want {
					t.Errorf("layers %v: %s from %q, want %q", given, s.name, got, want)
				}
			})
		}
	}
}

// orNone is the layer a secret's value names, or "default" for none.
func orNone(v string) string {
	if v == "" {
		return "default"
	}
	return v
}

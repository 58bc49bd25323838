package target

// Origin says where a Layer comes from, which shapes the names of its
// settings in messages.
type Origin int

const (
	// CommandLine is the flags of the command being run (the highest layer).
	CommandLine Origin = iota
	// Manifest is a manifest's "cache" and "push" objects.
	Manifest
)

// Layer is what one source of settings says about a push; an empty field
// says nothing, and the next layer down is asked. The command line and a
// manifest are Layers; Resolve adds the environment and cachix.dhall below
// them. Secrets are named by file here (never by value: flags and
// manifests must not hold secrets).
type Layer struct {
	Origin Origin
	// Cache is a Cachix cache name, URL a plain binary cache (file:// or
	// s3://); the first layer that gives either decides the cache.
	Cache, URL string
	// Host is the Cachix API host.
	Host string
	// AuthTokenFile and SigningKeyFile are read when pushing.
	AuthTokenFile, SigningKeyFile string
	// S3CredentialsFile is an AWS shared credentials file (s3:// caches).
	S3CredentialsFile string
	// Compression ("zstd", "xz") and CompressionLevel (nil: not given).
	Compression      string
	CompressionLevel *int
	// Jobs is the number of paths uploaded at once (0: not given).
	Jobs int
	// ChunkSize and ConcurrentChunks size a Cachix upload's parts (0: not given).
	ChunkSize, ConcurrentChunks int
	// OmitDeriver is set by any layer that sets it.
	OmitDeriver bool
}

// secret is one layer's word on a secret: a file to read, or a value (the
// environment's, cachix.dhall's), with the source messages name.
type secret struct {
	file, value string
	// source names where it is, never what it is ("--auth-token-file /x",
	// "$CACHIX_AUTH_TOKEN", "authToken in /root/.config/cachix/cachix.dhall").
	source string
	// empty marks a variable that is set but empty: skipped, with a warning.
	empty bool
	// fromConfig marks cachix.dhall's, whose exposure is checked when used.
	fromConfig bool
}

// set reports whether the layer says something about the secret.
func (s secret) set() bool { return s.source != "" && !s.empty }

// layer is a Layer, the environment or cachix.dhall, in the one form the
// precedence function walks.
type layer struct {
	cache, url, host string
	token, key       secret
	s3File           string
	compression      string
	level            *int
	jobs             int
	chunkSize        int
	chunks           int
	omitDeriver      bool
}

// of converts a Layer.
func of(l Layer) layer {
	tokenOrigin, keyOrigin := "--auth-token-file", "--signing-key-file"
	if l.Origin == Manifest {
		tokenOrigin, keyOrigin = "manifest authTokenFile", "manifest signingKeyFile"
	}
	return layer{
		cache: l.Cache, url: l.URL, host: l.Host,
		token:  fileSecret(tokenOrigin, l.AuthTokenFile),
		key:    fileSecret(keyOrigin, l.SigningKeyFile),
		s3File: l.S3CredentialsFile, compression: l.Compression, level: l.CompressionLevel,
		jobs: l.Jobs, chunkSize: l.ChunkSize, chunks: l.ConcurrentChunks, omitDeriver: l.OmitDeriver,
	}
}

// fileSecret is a secret read from path ("" says nothing).
func fileSecret(origin, path string) secret {
	if path == "" {
		return secret{}
	}
	return secret{file: path, source: origin + " " + path}
}

// pick is the precedence, the one rule for every setting: the value of
// the highest layer that sets it, and that layer's index (-1: none does).
func pick[T any](layers []layer, get func(layer) (T, bool)) (T, int) {
	for i, l := range layers {
		if v, ok := get(l); ok {
			return v, i
		}
	}
	var zero T
	return zero, -1
}

// first is pick for a value whose zero means "not set".
func first[T comparable](layers []layer, get func(layer) T) T {
	var zero T
	v, _ := pick(layers, func(l layer) (T, bool) { v := get(l); return v, v != zero })
	return v
}

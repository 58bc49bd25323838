package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: every kind of bad input gets one clear line on stderr, exit
// code 2, and leaves the cache untouched.
func TestBadInput(t *testing.T) {
	requireNix(t)
	t.Parallel()
	salt := t.Name()
	good := nixBuild(t, "single", salt)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	cacheURL := "file://" + cache
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	manifestWith := func(name, cacheJSON, pathsJSON string) string {
		return write(name, `{"version":1,"cache":`+cacheJSON+`,"paths":`+pathsJSON+`}`)
	}
	okPaths := `[{"storePath":"` + good + `"}]`
	cacheObj := `{"url":"` + cacheURL + `"}`
	gone := "/nix/store/00000000000000000000000000000000-never-built"

	tests := []struct {
		name string
		args []string
		want []string // substrings of the error line
	}{
		{"malformed JSON", []string{write("bad.json", `{"version": 1, "cache": `)},
			[]string{"bad.json", "not valid JSON"}},
		{"wrong version", []string{write("v2.json", `{"version":2,"cache":`+cacheObj+`,"paths":[]}`)},
			[]string{"v2.json", "version", "only version 1"}},
		{"missing storePath", []string{manifestWith("nosp.json", cacheObj, `[{"name":"x"}]`)},
			[]string{"nosp.json", "paths[0].storePath", "is required"}},
		{"path not in store (manifest)", []string{manifestWith("gone.json", cacheObj, `[{"storePath":"`+gone+`"}]`)},
			[]string{"gone.json: paths[0].storePath: " + gone, "not a valid path in the Nix store"}},
		{"path not in store (argument)", []string{"--to", cacheURL, gone},
			[]string{gone, "not a valid path in the Nix store"}},
		{"path outside the store", []string{"--to", cacheURL, dir},
			[]string{dir, "outside /nix/store"}},
		{"token file inside the store", []string{manifestWith("tok.json",
			`{"name":"mycache","authTokenFile":"`+good+`"}`, okPaths)},
			[]string{"tok.json", "cache.authTokenFile", "inside the Nix store"}},
		{"unreadable key file", []string{manifestWith("key.json",
			`{"url":"`+cacheURL+`","signingKeyFile":"`+filepath.Join(dir, "no-such.key")+`"}`, okPaths)},
			[]string{"signing key", "no-such.key", "no such file"}},
		{"key file is a directory", []string{"--to", cacheURL, "--signing-key-file", dir, good},
			[]string{"signing key", "is a directory"}},
		{"corrupt key", []string{"--to", cacheURL, "--signing-key-file", write("bad.key", "k:!!!!"), good},
			[]string{"signing key", "bad.key", "not base64"}},
		{"cache parent missing", []string{"--to", "file://" + filepath.Join(dir, "no", "such", "cache"), good},
			[]string{filepath.Join(dir, "no", "such"), "does not exist"}},
		{"paths without a target", []string{good},
			[]string{"--cache NAME", "--to URL"}},
		{"both --cache and --to", []string{"--cache", "c", "--to", cacheURL, good},
			[]string{"either --cache or --to"}},
		{"flag after argument, bad value", []string{good, "--to", cacheURL, "-j", "0"},
			[]string{"--jobs", "between 1 and 256"}},
		{"bad compression", []string{"-m", "gzip", "--to", cacheURL, good},
			[]string{"gzip"}},
		{"unknown flag", []string{"--frobnicate", good},
			[]string{"frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", nil, append([]string{"push"}, tt.args...)...)
			if r.code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "cachix-select: ") {
				t.Errorf("want exactly one error line, got:\n%s", r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(cache, "nar")); len(entries) != 0 {
				t.Errorf("bad input wrote %d NARs into the cache", len(entries))
			}
		})
	}
}

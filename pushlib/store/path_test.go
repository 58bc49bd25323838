package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// TestParsePath follows Nix's own rules for store path names: what Nix
// accepts passes, what it rejects fails with a short, escaped one-line
// message that never repeats a huge input.
func TestParsePath(t *testing.T) {
	t.Parallel()
	const dir = "/nix/store"
	const hash = "dd6q030zgh4g66z31amskd61262bgyn9"
	huge := strings.Repeat("a", 50<<20)
	tests := []struct {
		name    string
		path    string
		wantErr string // "" = valid
	}{
		{name: "plain", path: dir + "/" + hash + "-hello-2.12.1"},
		{name: "all allowed characters", path: dir + "/" + hash + "-aZ09+-._?="},
		{name: "leading dot", path: dir + "/" + hash + "-.hidden"},
		{name: "211 bytes", path: dir + "/" + hash + "-" + strings.Repeat("x", 211)},
		{name: "212 bytes", path: dir + "/" + hash + "-" + strings.Repeat("x", 212), wantErr: "212 bytes long"},
		{name: "50 MB", path: dir + "/" + hash + "-" + huge, wantErr: "52428800 bytes long"},
		{name: "NUL", path: dir + "/" + hash + "-a\x00b", wantErr: `'\x00'`},
		{name: "newline", path: dir + "/" + hash + "-a\nb", wantErr: `'\n'`},
		{name: "ESC", path: dir + "/" + hash + "-a\x1b[31mred", wantErr: `'\x1b'`},
		{name: "non-UTF-8", path: dir + "/" + hash + "-a\xff", wantErr: `byte \xff`},
		{name: "UTF-8 outside the set", path: dir + "/" + hash + "-café", wantErr: `'é'`},
		{name: "space", path: dir + "/" + hash + "-a b", wantErr: `' '`},
		{name: "dot", path: dir + "/" + hash + "-.", wantErr: "does not allow the name"},
		{name: "dot dot", path: dir + "/" + hash + "-..", wantErr: "does not allow the name"},
		{name: "dot dash", path: dir + "/" + hash + "-.-x", wantErr: "does not allow the name"},
		{name: "empty name", path: dir + "/" + hash + "-", wantErr: "<32-character hash>-<name>"},
		{name: "short hash", path: dir + "/" + hash[:31] + "-hello", wantErr: "<32-character hash>-<name>"},
		{name: "hash with e", path: dir + "/e" + hash[1:] + "-hello", wantErr: "not nix-base32"},
		{name: "hash with upper case", path: dir + "/D" + hash[1:] + "-hello", wantErr: "not nix-base32"},
		{name: "other store", path: "/gnu/store/" + hash + "-hello", wantErr: "not in /nix/store"},
		{name: "inside", path: dir + "/" + hash + "-hello/bin", wantErr: "inside a store path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sp, err := store.ParsePath(dir, tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParsePath: %v", err)
				}
				if sp.String() != tt.path || sp.Dir() != dir || sp.Hash() != hash || sp.Base() != tt.path[len(dir)+1:] ||
					sp.Name != tt.path[len(dir)+34:] || len(sp.Digest) != 20 {
					t.Errorf("parsed into %q: dir %q hash %q base %q name %q", sp, sp.Dir(), sp.Hash(), sp.Base(), sp.Name)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not say %q", msg, tt.wantErr)
			}
			if !errors.Is(err, store.ErrBadPath) || !errors.Is(err, store.ErrNotInStore) {
				t.Errorf("error %v is not ErrBadPath and ErrNotInStore", err)
			}
			if strings.ContainsAny(msg, "\n\x00\x1b") || len(msg) > 400 {
				t.Errorf("message is not one short escaped line (%d bytes): %q", len(msg), msg[:min(len(msg), 500)])
			}
		})
	}
}

// TestQuote shows ordinary paths as they are and everything else escaped
// and bounded.
func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/nix/store/x-hello", "/nix/store/x-hello"},
		{"a\nb", `"a\nb"`},
		{"a b", `"a b"`},
		{"\xff", `"\xff"`},
		{"", `""`},
		{strings.Repeat("a", 150), `"` + strings.Repeat("a", 100) + `"… (150 bytes)`},
	}
	for _, tt := range tests {
		if got := store.Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestResolveRefusesBadNames: an argument Nix could never accept as a
// store path is refused before Nix is asked.
func TestResolveRefusesBadNames(t *testing.T) {
	t.Parallel()
	s := &store.Store{Dir: "/nix/store"}
	_, err := s.Resolve([]string{"/nix/store/dd6q030zgh4g66z31amskd61262bgyn9-a\nb/bin/x"})
	if !errors.Is(err, store.ErrBadPath) || !strings.Contains(err.Error(), `'\n'`) {
		t.Fatalf("Resolve = %v, want a bad-path error naming the newline", err)
	}
}

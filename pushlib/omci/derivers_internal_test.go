package omci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDrvSystem reads the system of a foreign .drv and reports unreadable ones.
func TestDrvSystem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.drv")
	if err := os.WriteFile(garbage, []byte("not a derivation at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want, errHas string
	}{
		// Instantiated (not built) by nix-instantiate with system = "aarch64-darwin".
		{name: "foreign system", path: filepath.Join("testdata", "aarch64-darwin-foo.drv"), want: "aarch64-darwin"},
		{name: "missing", path: filepath.Join(dir, "gone.drv"), errHas: "its deriver " + filepath.Join(dir, "gone.drv") + " is not in the local store"},
		{name: "not ATerm", path: garbage, errHas: "parsing deriver " + garbage + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := drvSystem(tt.path)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("drvSystem = %q, %v; want error containing %q", got, err, tt.errHas)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("drvSystem = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

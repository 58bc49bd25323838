package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadDerivationErrors: a derivation that is gone says so (the
// deriver of a substituted path, or one garbage-collected); one that is
// not ATerm says it cannot be read.
func TestReadDerivationErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := readDerivation(filepath.Join(dir, "x.drv")); err == nil || !strings.Contains(err.Error(), "not in the store") {
		t.Errorf("missing: %v", err)
	}
	bad := filepath.Join(dir, "bad.drv")
	if err := os.WriteFile(bad, []byte("DrvWithVersion(\"xp-dyn-drv\",[])"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readDerivation(bad); err == nil || !strings.Contains(err.Error(), "reading derivation") {
		t.Errorf("not ATerm: %v", err)
	}
	// A floating content-addressed output has no path: go-nix's
	// validation refuses it, but it parses, and is kept.
	ca := filepath.Join(dir, "ca.drv")
	if err := os.WriteFile(ca, []byte(`Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",["-c","echo > $out"],[("out","")])`), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := readDerivation(ca); err != nil || d.Outputs["out"] == nil || d.Outputs["out"].Path != "" {
		t.Errorf("floating CA: %+v, %v", d, err)
	}
}

package activate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cachix-select/cachix-select/pushlib/internal/fsutil"
)

// RequestStart appends unit to list, the file in which NixOS activation
// scripts ask switch-to-configuration to (re)start a unit once it has run
// activation and reloaded systemd (/run/nixos/activation-restart-list;
// see lib.nix's nixosActivation for the semantics relied on). The file is
// created if needed, one unit per line; a unit listed twice is started
// once.
func RequestStart(list, unit string) error {
	if err := os.MkdirAll(filepath.Dir(list), 0o755); err != nil {
		return fmt.Errorf("asking for %s to be started: %w", unit, err)
	}
	f, err := os.OpenFile(list, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("asking for %s to be started: %w", unit, err)
	}
	if _, err := f.WriteString(unit + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("asking for %s to be started: writing %s: %w", unit, list, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("asking for %s to be started: writing %s: %w", unit, list, err)
	}
	return nil
}

// ErrCredentialMissing means a file a unit would load as a credential
// cannot be read now.
var ErrCredentialMissing = errors.New("cannot be read")

// CheckCredentials makes sure every named file can be opened for
// reading. systemd refuses to start a unit whose LoadCredential= source
// is missing, and a unit that fails to start fails the whole switch; a
// push whose secret is missing had better wait in the queue with a
// warning. Empty names are skipped.
func CheckCredentials(files ...string) error {
	for _, file := range files {
		if file == "" {
			continue
		}
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("%s %w (%v)", file, ErrCredentialMissing, fsutil.Cause(err))
		}
		f.Close()
	}
	return nil
}

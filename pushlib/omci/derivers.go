package omci

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nix-community/go-nix/pkg/derivation"

	"github.com/cachix-select/cachix-select/pushlib/store"
)

// SystemsFromDerivers finds which system built each of paths: it asks the
// local Nix database for the path's deriver and reads the `system` field
// of that .drv file. This is how a multi-system results file, whose byName
// does not record systems, can still be pinned correctly. It fails, with
// ErrUnknownSystem, for a path whose deriver is unknown or not present
// locally (e.g. results copied back from a remote machine).
func SystemsFromDerivers(ctx context.Context, st *store.Store, paths []string) (map[string]string, error) {
	out := make(map[string]string, len(paths))
	if len(paths) == 0 {
		return out, nil
	}
	infos, err := st.Query(ctx, paths)
	if err != nil {
		return nil, fmt.Errorf("querying derivers: %w", err)
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		drv := infos[p].Deriver
		if drv == "" {
			return nil, fmt.Errorf("%w: %s has no known deriver in the local Nix store", ErrUnknownSystem, p)
		}
		sys, err := drvSystem(drv)
		if err != nil {
			return nil, fmt.Errorf("%w: finding the system of %s: %w", ErrUnknownSystem, p, err)
		}
		out[p] = sys
	}
	return out, nil
}

// drvSystem reads the system a .drv file builds for.
func drvSystem(drvPath string) (string, error) {
	f, err := os.Open(drvPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("its deriver %s is not in the local store", drvPath)
		}
		return "", fmt.Errorf("reading deriver: %w", err)
	}
	defer f.Close()
	// Validate may object to details that do not matter here (e.g. an
	// unusual store directory); only a parse failure is fatal.
	drv, err := derivation.ReadDerivation(f)
	if drv == nil || drv.Platform == "" {
		if err == nil {
			err = errors.New("no system field")
		}
		return "", fmt.Errorf("parsing deriver %s: %w", drvPath, err)
	}
	return drv.Platform, nil
}

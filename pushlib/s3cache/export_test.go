package s3cache

import (
	"github.com/cachix-select/cachix-select/pushlib/narstream"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// SetStrategy forces Missing to HEAD ("head") or list ("list") whatever
// the closure size ("" = choose), so that a benchmark can compare them.
func SetStrategy(c *Cache, s string) { c.strategy = s }

// StagingName and MachineTag expose how staging keys are named.
func StagingName(info *store.PathInfo, comp narstream.Compression) string {
	return stagingName(info, comp)
}
func MachineTag() string { return machineTag() }

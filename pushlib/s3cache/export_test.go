package s3cache

// SetStrategy forces Missing to HEAD ("head") or list ("list") whatever
// the closure size ("" = choose), so that a benchmark can compare them.
func SetStrategy(c *Cache, s string) { c.strategy = s }

// MachineTag exposes how staging keys are named.
func MachineTag() string { return machineTag() }

// Requests returns how many HTTP requests c made, by method.
func Requests(c *Cache) map[string]int { return c.rt.counts() }

package narstream

import "testing"

// SetParallelThreshold lowers the NAR size of the parallel mode for one
// test (which must not run in parallel with others that stream).
func SetParallelThreshold(t *testing.T, n uint64) {
	old := parallelThreshold
	parallelThreshold = n
	t.Cleanup(func() { parallelThreshold = old })
}

// Incompressible is incompressible, for the tests.
var Incompressible = incompressible

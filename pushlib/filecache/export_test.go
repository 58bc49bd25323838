package filecache

import "time"

// SetWalkBudget replaces walkBudget for a test.
func SetWalkBudget(f func(n int) time.Duration) (restore func()) {
	old := walkBudget
	walkBudget = f
	return func() { walkBudget = old }
}

package store

// SetArgBudget shrinks the bytes of paths per Nix command line, so that
// tests exercise batching with a few hundred paths.
func SetArgBudget(s *Store, n int) { s.argBudget = n }

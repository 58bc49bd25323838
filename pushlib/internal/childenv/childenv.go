// Package childenv is the environment of the programs cachix-select runs
// for itself (nix, nix-store, systemctl): ours without the secrets it
// reads from the environment. They need none of them, and a secret in a
// child's environment can be read from its /proc entry by whoever may
// read that process, or be logged by a child that dumps its environment.
// The detached `queue flush` is not such a child: it pushes, and keeps
// them.
package childenv

import (
	"os"
	"strings"
)

// Secrets are the variables cachix-select reads secrets from.
var Secrets = []string{
	"CACHIX_AUTH_TOKEN",
	"CACHIX_SIGNING_KEY",
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
}

// Environ is os.Environ() without Secrets.
func Environ() []string {
	return Without(os.Environ())
}

// Without returns env without the entries of Secrets.
func Without(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !isSecret(kv) {
			out = append(out, kv)
		}
	}
	return out
}

func isSecret(kv string) bool {
	name, _, _ := strings.Cut(kv, "=")
	for _, s := range Secrets {
		if name == s {
			return true
		}
	}
	return false
}

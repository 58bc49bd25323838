#!/usr/bin/env bash
# The main job on a local default, no account needed: build cachix-select,
# build a small real store path, push it (with its closure) into a local
# binary cache, signed, and have real Nix substitute it back into a fresh
# store with signatures required. Installs Nix (Debian's nix-bin) when missing.
#
# Everything it makes goes into a new directory of its own (mktemp under
# $TMPDIR, or $CACHIX_SELECT_DEMO_DIR, which must not exist yet), so runs
# at the same time do not touch each other's files; it says where at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/install-nix.sh
. tests/lib/nix-env.sh

if [ -n "${CACHIX_SELECT_DEMO_DIR:-}" ]; then
  work=$CACHIX_SELECT_DEMO_DIR
  mkdir "$work" # fails when it exists: never reuse or clobber a directory
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/cachix-select-demo.XXXXXX")
fi
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "Building cachix-select (the first build fetches Go modules and compiles: about a minute; later ones take seconds)"
go build -o "$work/cachix-select" ./cmd/cachix-select
"$work/cachix-select" --version

step "Building a small real store path (and a dependency) with Nix"
# The salt makes this run's store paths its own.
app=$(nix-build --no-out-link tests/fixtures/closure.nix -A app --argstr salt "quickstart-${work##*/}")
nix-store --query --requisites "$app"

step "Making a signing key for the local cache"
nix key generate-secret --key-name quickstart-1 > "$work/secret.key"
chmod 600 "$work/secret.key"
pub=$(nix key convert-secret-to-public < "$work/secret.key")
echo "public key: $pub"

step "Pushing it into file://$work/cache from a manifest"
cat > "$work/manifest.json" <<JSON
{
  "version": 1,
  "cache": { "url": "file://$work/cache", "signingKeyFile": "$work/secret.key" },
  "paths": [ { "name": "app", "storePath": "$app" } ],
  "origin": "manual"
}
JSON
"$work/cachix-select" push "$work/manifest.json"

step "Pushing again: nothing to do"
"$work/cachix-select" push "$work/manifest.json"

step "Real Nix substitutes the closure into a fresh store, signatures required"
nix copy --from "file://$work/cache" --to "$work/fresh-store" \
  --option require-sigs true --option trusted-public-keys "$pub" "$app"
target=$(readlink "$work/fresh-store$app/bin/hello")   # an absolute /nix/store/… link
echo "running $target from the fresh store:"
sh "$work/fresh-store$target"

step "Done: cache in $work/cache, fresh store in $work/fresh-store"

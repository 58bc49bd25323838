#!/usr/bin/env bash
# Prints the vendorHash that buildGoModule computes for modules/package.nix:
# the sha256 NAR hash (SRI form) of the directory `go mod vendor` writes
# when run on the package's filtered source, which is what nixpkgs'
# goModules derivation copies to $out (outputHashMode = "recursive").
#
# With --build FILE VERSION it also builds cmd/cachix-select from that
# source the way buildGoModule does (-mod=vendor, -trimpath, the package's
# ldflags), to check that the narrowed source is complete.
# Needs Go and Nix; no network once the Go module cache is filled (go test
# ./... fills it), else Go fetches the modules from its proxy.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/nix-env.sh

src=$(nix-instantiate --read-write-mode --eval \
        -E '(import ./modules/package.nix { buildGoModule = a: a; }).src' | tr -d '"')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
# Modules come from the module cache (filled by go test ./...), else the proxy.
export GOTOOLCHAIN=local GOWORK=off GO111MODULE=on GOFLAGS=
(cd "$work/src" && go mod vendor)
nix hash path --type sha256 "$work/src/vendor"

if [ "${1-}" = --build ]; then
  out=$(realpath -m "$2")
  ldflags=$(nix-instantiate --eval --strict --json \
    --argstr version "$3" \
    -E '{ version }: (import ./modules/package.nix { buildGoModule = a: a; inherit version; }).ldflags' |
    tr -d '[]"' | tr ',' ' ')
  (cd "$work/src" && CGO_ENABLED=0 go build -mod=vendor -trimpath -ldflags "$ldflags -buildid=" \
    -o "$out" ./cmd/cachix-select)
fi

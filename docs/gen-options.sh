#!/usr/bin/env bash
# Regenerates docs/modules.md from the modules (docs/gen-options.nix).
#
#   docs/gen-options.sh           rewrite docs/modules.md
#   docs/gen-options.sh --check   exit 1 when docs/modules.md is not what the
#                                 modules render (for CI); with NIXPKGS_LIB_SRC
#                                 set (a nixpkgs or nixpkgs.lib checkout), also
#                                 render with the real nixpkgs lib and fail when
#                                 the stand-in's type descriptions differ
#
# Needs only Nix (nix-instantiate's evaluator through `nix eval`); no nixpkgs,
# no network, nothing built.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/nix-env.sh

out=docs/modules.md

# render prints the document, rendered with the stand-in lib, or with the
# nixpkgs lib of the checkout $GEN_OPTIONS_LIB_SRC when that is set.
render() {
  nix eval --raw --impure --expr '
    import ./docs/gen-options.nix (
      let src = builtins.getEnv "GEN_OPTIONS_LIB_SRC";
      in if src == "" then { } else { lib = import (src + "/lib"); })'
  echo
}

case "${1-}" in
  "")
    tmp=$(mktemp "$out.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    GEN_OPTIONS_LIB_SRC= render >"$tmp"
    mv "$tmp" "$out"
    trap - EXIT
    echo "wrote $out"
    ;;
  --check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    GEN_OPTIONS_LIB_SRC= render >"$tmp/stub.md"
    if ! diff -u "$out" "$tmp/stub.md" >"$tmp/diff"; then
      head -40 "$tmp/diff" >&2
      echo "$out is stale: run docs/gen-options.sh" >&2
      exit 1
    fi
    if [ -n "${NIXPKGS_LIB_SRC-}" ]; then
      GEN_OPTIONS_LIB_SRC=$(realpath "$NIXPKGS_LIB_SRC") render >"$tmp/real.md"
      if ! diff -u "$tmp/real.md" "$tmp/stub.md" >"$tmp/diff"; then
        head -40 "$tmp/diff" >&2
        echo "docs/gen-options.nix: its stand-in lib renders differently from nixpkgs' lib ($NIXPKGS_LIB_SRC)" >&2
        exit 1
      fi
      echo "ok - $out is up to date (and renders the same with nixpkgs' lib)"
    else
      echo "ok - $out is up to date (NIXPKGS_LIB_SRC unset: not compared with nixpkgs' lib)"
    fi
    ;;
  *)
    echo "usage: docs/gen-options.sh [--check]" >&2
    exit 2
    ;;
esac

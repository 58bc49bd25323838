#!/usr/bin/env bash
# Benchmark: the cost of computing a build closure (issue 12). A
# derivation with ~1,000 inputs (tests/fixtures/many-inputs.nix: 1,000
# input derivations, one of them with two outputs, and 20 sources; its own
# output never built) is planned with `push --dry-run --closure build DRV`
# against an empty file:// cache, RUNS times. Printed: the median wall
# time of the dry run, of the closure part alone (the same dry run with
# the runtime closure of the inputs given as plain roots, which costs the
# same presence check and metadata query), the number of Nix processes the
# dry run starts (wrappers count them), and the paths each query finds;
# for comparison, `nix-store --query --requisites --include-outputs DRV`
# (every output of every derivation in the build graph, filtered to the
# valid ones) timed the same way.
#
# Building the fixture's 1,000 inputs takes about 40 s the first time.
#
# Usage: tests/bench/build-closure.sh [RUNS]   (default 5; BENCH_DIR=… to move the scratch space)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/nix-env.sh

runs=${1:-5}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/cachix-select-bench-build}
mkdir -p "$work"
say() { printf '%s\n' "$*" >&2; }

say "== building cachix-select and the fixture (1,000 input derivations)"
go build -o "$work/cachix-select" ./cmd/cachix-select
fixture=tests/fixtures/many-inputs.nix
fargs=(--argstr salt bench-build-closure --arg drvs 1000 --arg srcs 20)
nix-build "$fixture" "${fargs[@]}" -A inputs --no-out-link -j 2 > "$work/inputs"
drv=$(nix-instantiate "$fixture" "${fargs[@]}" -A top 2>/dev/null)
say "derivation: $drv ($(wc -l < "$work/inputs") input outputs built)"

# Wrappers that count the Nix processes cachix-select starts.
mkdir -p "$work/bin"
for tool in nix nix-store; do
  real=$(command -v "$tool")
  printf '#!/bin/sh\necho %s >> %s\nexec %s "$@"\n' "$tool" "$work/calls" "$real" > "$work/bin/$tool"
  chmod +x "$work/bin/$tool"
done

# median CMD...: the median wall time of RUNS runs, in ms.
median() {
  local i t0 t1 times=()
  for i in $(seq 1 "$runs"); do
    t0=$(date +%s%N)
    "$@" > /dev/null 2>&1
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

cache=file://$work/empty-cache
dry_build() { PATH=$work/bin:$PATH "$work/cachix-select" push --dry-run --json --closure build --to "$cache" "$drv"; }

rm -f "$work/calls"
dry_build > "$work/dry.json"
procs=$(wc -l < "$work/calls")
nix_calls=$(sort "$work/calls" | uniq -c | tr '\n' ' ')
result=$(tail -1 "$work/dry.json")
closure=$(printf '%s' "$result" | grep -o '"closure":[0-9]*' | cut -d: -f2)
skipped=$(printf '%s' "$result" | grep -o '"skipped":\[[^]]*\]' | grep -o '/nix/store' | wc -l)

t_build=$(median dry_build)
seeds=$(printf '%s\n' "$(cat "$work/inputs")" "$(nix-store --query --references "$drv" | grep -v '\.drv$')" | sort -u)
dry_runtime() { printf '%s\n' "$seeds" | "$work/cachix-select" push --dry-run --json --to "$cache"; }
t_runtime=$(median dry_runtime)

qr() { nix-store --query --requisites --include-outputs "$drv"; }
t_qr=$(median qr)
qr_all=$(qr | wc -l)
qr_outputs=$(qr | grep -vc '\.drv$' || true)

say ""
say "build closure of a derivation with $(($(wc -l < "$work/inputs") + 20)) inputs ($runs runs, median):"
say "  push --dry-run --closure build: ${t_build} ms, $procs Nix processes ($nix_calls), closure of $closure paths, $skipped not realised (skipped)"
say "  the same dry run on the inputs as runtime roots: ${t_runtime} ms (so the build closure costs $((t_build - t_runtime)) ms more)"
say "  nix-store -qR --include-outputs DRV: ${t_qr} ms, 1 process, $qr_all paths: $((qr_all - qr_outputs)) .drv files and $qr_outputs outputs and sources, $((qr_outputs - closure)) more than the build closure (what its inputs were built with, outputs it does not use)"

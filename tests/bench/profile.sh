#!/usr/bin/env bash
# Where a push's time goes, for one or more of the benchmark's push shapes
# (full, tiny100 … tiny10k, random1g, text100m, text1g, text4g, cachix;
# see bench.sh): for each, into a fresh cache every time,
#  1. the wall-clock breakdown by stage (tests/bench/stages: start-up, the
#     Nix subprocesses, the cache query, the uploads and publication);
#  2. a CPU profile ($CACHIX_SELECT_CPUPROFILE; `go tool pprof -top`, flat
#     and cumulative);
#  3. the system calls, `strace -f -c -w` (count and wall time per call:
#     fsync, renameat, openat, …), which slows the push down itself.
# Needs what bench.sh needs, and strace (Debian: apt-get install strace).
#
# Usage: tests/bench/profile.sh [--bin CACHIX-SELECT] SHAPE...
# Environment: BENCH_DIR (scratch space and groups.json, as bench.sh),
# BENCH_KEEP=1 (keep the caches and the raw profiles).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/nix-env.sh

say() { printf '%s\n' "$*" >&2; }
bin=
if [ "${1:-}" = --bin ]; then bin=$(realpath "$2"); shift 2; fi
[ $# -ge 1 ] || { sed -n 's/^# Usage: //p' "$0" >&2; exit 2; }
command -v strace > /dev/null || { say "profile.sh needs strace (Debian: apt-get install strace)"; exit 2; }

work=${BENCH_DIR:-${TMPDIR:-/tmp}/cachix-select-bench}
mkdir -p "$work"; work=$(realpath "$work")
run=$(mktemp -d "$work/profile.XXXXXX")
say "== building the helpers"
go build -o "$run/stages" ./tests/bench/stages
go build -o "$run/cachix-test-server" ./tests/cachixserver/cmd/cachix-test-server
if [ -z "$bin" ]; then go build -o "$run/cachix-select" ./cmd/cachix-select; bin=$run/cachix-select; fi
[ -s "$work/groups.json" ] || { say "no $work/groups.json: run tests/bench/bench.sh --shapes full 1 once first"; exit 1; }

server_pid=
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true' EXIT
n=0
for shape in "$@"; do
  case $shape in
    full|cachix) attr=big ;;
    tiny100|tiny1k|tiny3k|tiny10k) attr=tiny${shape#tiny}; attr=${attr/k/000} ;;
    random1g|text100m|text1g|text4g) attr=$shape ;;
    *) say "unknown shape $shape"; exit 2 ;;
  esac
  root=$(nix-build --no-out-link tests/bench/closure.nix -A "$attr" --arg groupsFile "$work/groups.json" 2> "$run/build.log") ||
    { cat "$run/build.log" >&2; exit 1; }
  nix-store -qR "$root" | xargs -r -d '\n' sh -c 'find "$@" -type f -exec cat {} +' sh > /dev/null
  if [ "$shape" = cachix ] && [ -z "$server_pid" ]; then
    (umask 077; echo "profile-token-$$" > "$run/token")
    mkdir -p "$run/server-data"
    "$run/cachix-test-server" --token-file "$run/token" --public --data-dir "$run/server-data" \
      $(for i in $(seq 1 $(( $# * 3 ))); do echo --cache "p$i"; done) > "$run/server.json" 2> "$run/server.log" &
    server_pid=$!
    for _ in $(seq 1 100); do [ -s "$run/server.json" ] && break; sleep 0.1; done
    host=$(grep -o '"url":"[^"]*"' "$run/server.json" | head -1 | cut -d'"' -f4)
  fi
  # next_target: sets $tgt to the push's destination arguments, a fresh cache each call.
  next_target() {
    n=$((n + 1))
    if [ "$shape" = cachix ]; then
      tgt=(--host "$host" --cache "p$n" --auth-token-file "$run/token")
    else
      tgt=(--to "file://$run/$shape-$n")
    fi
  }
  echo
  echo "#### $shape: $(nix-store -qR "$root" | wc -l) paths, $(( $(nix path-info -S "$root" | awk '{print $2}') / 1000000 )) MB of NAR"
  echo
  echo "stages (one push, --json):"
  sync
  next_target
  "$run/stages" "$bin" push "${tgt[@]}" "$root"
  echo
  sync
  next_target
  CACHIX_SELECT_CPUPROFILE=$run/$shape.pprof "$bin" push -q "${tgt[@]}" "$root"
  echo "CPU profile, flat:"
  go tool pprof -top -nodecount=25 "$bin" "$run/$shape.pprof" 2> /dev/null | sed -n '1,35p'
  echo
  echo "CPU profile, cumulative:"
  go tool pprof -top -cum -nodecount=30 "$bin" "$run/$shape.pprof" 2> /dev/null | sed -n '6,40p'
  echo
  sync
  next_target
  strace -f -c -w -o "$run/$shape.strace" "$bin" push -q "${tgt[@]}" "$root"
  echo "system calls (strace -f -c -w: wall time inside each call, summed over threads):"
  head -n 22 "$run/$shape.strace"
  grep -E ' (fsync|fdatasync|syncfs|renameat2?|rename|openat|flock|fchmod|unlinkat|execve|total)$' "$run/$shape.strace" | sed 's/^/  /' || true
done
if [ -z "${BENCH_KEEP:-}" ]; then
  rm -rf "$run"
else
  say "profiles and caches kept in $run"
fi

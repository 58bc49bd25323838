#!/usr/bin/env bash
# Benchmark: cachix-select against Nix itself on the same data, shape by
# shape, in one run. Every shape runs its contenders alternately (round 1
# in one order, round 2 in the reverse order, …), each push into a fresh
# directory, and reports medians of RUNS rounds (3 × RUNS rounds for the
# sub-second no-op shapes) with the min–max range of the wall times:
#
#   full       push of ~200 store paths / ~800 MB of NAR (real ELF libraries
#              and text copied from the host) to file://, against
#              `nix copy --to 'file://…?compression=zstd'`, with the floor
#              (tests/bench/floor: the same reads, both hashes and zstd on
#              every core, nothing written) run alternately too
#   tiny100, tiny1k, tiny3k, tiny10k
#              push of the closure of 100 … 10,000 tiny chained paths (each
#              refers to the one before it), against `nix copy`
#   random1g, text1g
#              push of one store path holding one 1 GiB file, random or
#              compressible (the host files laid end to end), against `nix copy`
#   text100m, text4g
#              the same with 100 MB and 4 GiB of compressible NAR (how cost
#              grows with size); text4g is opt-in: it needs ~14 GB of disk
#              (4.3 GB in the store, ~1.4 GB per push) and ~3 minutes
#   noop2k, noop20k
#              push of a closure of 2,000 / 20,000 paths the file:// cache
#              already has, against `nix path-info -r --json` on it: as a
#              repeated push runs (the closure known from the push before)
#              and as the first push from this machine runs (a fresh
#              $XDG_CACHE_HOME each time)
#   activate   `cachix-select activate` of a manifest whose 2,000-path
#              closure is recorded as pushed (a switch with nothing new),
#              against the same `nix path-info -r --json`
#   cachix     the full push to the strict Cachix test server on loopback
#              (a fresh cache each round), alternately with cachix-select's
#              file:// push and `nix copy`; the client's CPU-seconds
#              against the file:// push's. The server's work is not the
#              client's, and on two cores it slows the client: the server
#              keeps what it receives in memory (its disk writes, journal
#              and writeback made the client's compressor ~13 % slower),
#              and verifies each push's NARs after the push, not during it
#              (--defer-verification; a bad NAR fails the benchmark);
#              then a no-op push of
#              2,000 paths to it, counting its requests
#   s3         the full push to MinIO on loopback (tests/lib/s3-server.sh
#              build makes it; a fresh bucket each round), alternately with
#              the file:// push and `nix copy` (Debian's Nix cannot push to
#              S3); a no-op push of 2,000 paths (requests counted) and one
#              push of random1g
#   spawns     the Nix processes one push starts, for 100 and 3,000 paths
#              (strace -f -e trace=execve)
#
# Shapes: --shapes LIST, comma-separated names or groups: tiny (the four
# tiny shapes), nar (text100m, text1g, text4g), noop (noop2k, noop20k),
# default (everything but text4g), all. Default: default.
#
# --bin BIN measures BIN instead of a build of this checkout.
# --against BIN adds BIN (another cachix-select build, e.g. of main) as a
# contender wherever cachix-select runs, alternated with it, and reports
# cachix-select's time as a ratio of BIN's: how an optimisation is measured.
#
# Targets (issue 14), printed as met or MISSED; the script fails only when
# something breaks, never on a missed target: full push ≤ 0.50 × nix copy
# at ≤ 1.05 × its size; 3,000 tiny paths ≤ 0.50 ×; one 1 GiB compressible
# file ≤ 0.60 × at ≤ 1.05 × size; no-ops ≤ 1.00 × nix path-info; peak RSS
# ≤ 64 MiB for one 1 GiB NAR and ≤ 128 MiB for the full push (file:// or
# Cachix); the Cachix client ≤ 1.15 × the CPU-seconds of the file:// push;
# a no-op to Cachix costs one bulk query per 32,768 hashes and at most one
# cache-info request; the nix processes a push spawns do not grow with
# the number of paths.
#
# Needs bash, Go, Nix and strace (Debian: apt-get install strace; only the
# spawns shape uses it). The final table is Markdown, for the README.
#
# Usage: tests/bench/bench.sh [--shapes LIST] [--bin BIN] [--against BIN] [RUNS]   (RUNS default 3)
# Before each measurement the script waits, up to BENCH_SETTLE seconds
# (default 30), for the machine to be ≥ 85 % idle, and reports how idle it
# was: figures taken on a busy machine are noise.
#
# Environment: BENCH_DIR (scratch space, default $TMPDIR/cachix-select-bench),
# BENCH_KEEP=1 (keep this run's caches), BENCH_BYTES, BENCH_PATHS (size of
# the full closure).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/nix-env.sh

say() { printf '%s\n' "$*" >&2; }
usage() { sed -n 's/^# Usage: //p' "$0" >&2; exit 2; }

shapes_arg=default against= bin= runs=3
while [ $# -gt 0 ]; do
  case $1 in
    --shapes) [ $# -ge 2 ] || usage; shapes_arg=$2; shift 2 ;;
    --shapes=*) shapes_arg=${1#*=}; shift ;;
    --against) [ $# -ge 2 ] || usage; against=$2; shift 2 ;;
    --against=*) against=${1#*=}; shift ;;
    --bin) [ $# -ge 2 ] || usage; bin=$2; shift 2 ;;
    --bin=*) bin=${1#*=}; shift ;;
    -h|--help) usage ;;
    [0-9]*) runs=$1; shift ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
[ "$runs" -ge 1 ] 2>/dev/null || usage
for b in against bin; do
  if [ -n "${!b}" ]; then
    [ -x "${!b}" ] || { say "--$b ${!b}: not an executable"; exit 2; }
    printf -v "$b" '%s' "$(realpath "${!b}")"
  fi
done

all_shapes="full tiny100 tiny1k tiny3k tiny10k random1g text100m text1g text4g noop2k noop20k activate cachix s3 spawns"
declare -A want=()
for s in ${shapes_arg//,/ }; do
  case $s in
    all) for x in $all_shapes; do want[$x]=1; done ;;
    default) for x in $all_shapes; do [ "$x" = text4g ] || want[$x]=1; done ;;
    tiny) for x in tiny100 tiny1k tiny3k tiny10k; do want[$x]=1; done ;;
    nar) for x in text100m text1g text4g; do want[$x]=1; done ;;
    noop) want[noop2k]=1; want[noop20k]=1 ;;
    *) [[ " $all_shapes " == *" $s "* ]] || { say "unknown shape $s (want: $all_shapes, tiny, nar, noop, default, all)"; exit 2; }
       want[$s]=1 ;;
  esac
done
wants() { [ -n "${want[$1]:-}" ]; }
if wants spawns && ! command -v strace > /dev/null; then
  say "the spawns shape needs strace (Debian: apt-get install strace)"; exit 2
fi

work=${BENCH_DIR:-${TMPDIR:-/tmp}/cachix-select-bench}
target_bytes=${BENCH_BYTES:-800000000}
groups=${BENCH_PATHS:-200}
mkdir -p "$work"
work=$(realpath "$work")
# Every push of this run writes into a fresh directory under $run: removing
# thousands of files makes ext4 slow at creating files for minutes after,
# so nothing is removed until the end (single-file caches excepted).
run=$(mktemp -d "$work/run.XXXXXX")
# The closures the pushes remember are this run's, not the user's (the
# MinIO build stays where tests/lib/s3-server.sh keeps it: s3srv).
user_xdg_cache=${XDG_CACHE_HOME-}
export XDG_CACHE_HOME=$run/xdg-cache
s3srv() {
  if [ -n "$user_xdg_cache" ]; then XDG_CACHE_HOME=$user_xdg_cache tests/lib/s3-server.sh "$@"
  else env -u XDG_CACHE_HOME tests/lib/s3-server.sh "$@"; fi
}
res=$run/results
mkdir -p "$res"

say "== building cachix-select and the benchmark's helpers"
for p in cmd/cachix-select tests/bench/measure tests/cachixserver/cmd/cachix-test-server tests/bench/floor tests/bench/s3bucket; do
  go build -o "$work/$(basename "$p")" "./$p"
done
cs=${bin:-$work/cachix-select}
measure=$work/measure

# groups.json: host files (ELF libraries first, then text), ~target_bytes in
# total, dealt round-robin into $groups groups. Deterministic for a host.
if [ ! -s "$work/groups.json" ]; then
  say "== choosing ~$((target_bytes / 1000000)) MB of host files for $groups store paths"
  { find /usr/lib/x86_64-linux-gnu /usr/lib -xdev -type f -readable -size +4k -printf '%s\t%p\n' 2>/dev/null | sort -t$'\t' -k2 -u
    find /usr/share -xdev -type f -readable -size +1k -printf '%s\t%p\n' 2>/dev/null | sort -t$'\t' -k2
  } | grep -v -e '"' -e '\\' | awk -F'\t' -v target="$target_bytes" -v groups="$groups" '
      !seen[$2]++ && total < target { total += $1; g = n % groups; n++;
        files[g] = files[g] (files[g] == "" ? "" : ",") "\"" $2 "\"" }
      END { printf "["; for (i = 0; i < groups; i++) printf "%s[%s]", (i ? "," : ""), files[i]; print "]" }
    ' > "$work/groups.json"
fi

# build ATTR: sets $out to the store path of one of closure.nix's
# attributes (built once, then cached in the store).
declare -A built=()
build() {
  if [ -z "${built[$1]:-}" ]; then
    say "== building $1 (cached after the first run)"
    built[$1]=$(nix-build --no-out-link tests/bench/closure.nix -A "$1" --arg groupsFile "$work/groups.json" 2> "$run/build-$1.log") ||
      { cat "$run/build-$1.log" >&2; exit 1; }
  fi
  out=${built[$1]}
}
# warm ROOT: read the closure once, untimed, so no contender pays for a cold page cache.
warm() { nix-store -qR "$1" | xargs -r -d '\n' sh -c 'find "$@" -type f -exec cat {} +' sh > /dev/null; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "–"; else printf "%.2f", a / b}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r != "–" && r != "nan" && r + 0 <= t + 0 ? "met" : "MISSED")}'; }
# col SHAPE CONTENDER N: the medians of column N (1 wall, 2 RSS KiB, 3 CPU, 4 size) of a contender.
col() { if [ -s "$res/$1.$2" ]; then awk -v n="$3" 'NF >= n {print $n}' "$res/$1.$2" | median; else echo nan; fi; }
# pairs SHAPE A B: the range of A's wall time over B's, round by round.
pairs() {
  [ -s "$res/$1.$2" ] && [ -s "$res/$1.$3" ] || return 0
  paste <(awk '{print $1}' "$res/$1.$2") <(awk '{print $1}' "$res/$1.$3") |
    awk '$2 > 0 {print $1 / $2}' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf " (%.2f–%.2f)", lo, hi}'
}
range() { [ -s "$res/$1.$2" ] && awk '{print $1}' "$res/$1.$2" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.2f–%.2f", lo, hi}'; }

# idle_pct: how idle the machine was over the last half second (all
# cores, from /proc/stat).
idle_pct() {
  local a b
  a=$(awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  sleep 0.5
  b=$(awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 100)}'
}
# settle: other work shares the machine; wait (at most $BENCH_SETTLE
# seconds, default 30; 0: not at all) until it is ≥ 85 % idle, and record
# how idle it was when the measurement started.
settle() {
  local deadline=$((SECONDS + ${BENCH_SETTLE:-30})) idle
  idle=$(idle_pct)
  while [ "$idle" -lt 85 ] && [ "$SECONDS" -lt "$deadline" ]; do idle=$(idle_pct); done
  echo "$idle" >> "$res/idle"
}

# run_shape SHAPE ROUNDS CONTENDER...: ROUNDS rounds of every contender,
# alternating the order; contender X is the function c_X, called with a
# fresh directory name and printing "wall rss-kib cpu [size]". The line is
# appended to $res/SHAPE.X.
run_shape() {
  local shape=$1 rounds=$2 i c order
  shift 2
  for i in $(seq 1 "$rounds"); do
    if [ $((i % 2)) = 1 ]; then order=("$@"); else order=(); for c in "$@"; do order=("$c" "${order[@]}"); done; fi
    for c in "${order[@]}"; do
      sync # start from a clean page cache: no contender writes back another's data
      settle
      local line
      cut -d' ' -f1 /proc/loadavg >> "$res/loadavg"
      line=$("c_$c" "$run/$shape-$c-$i" 2>> "$run/contenders.log") ||
        { say "$shape: $c failed:"; tail -n 5 "$run/contenders.log" >&2; exit 1; }
      echo "$line" >> "$res/$shape.$c"
      say "  $shape round $i: $c $(echo "$line" | awk '{printf "%s s, %d MiB, %s CPU-s", $1, $2 / 1024, $3}')"
    done
  done
}
# nar_bytes DIR: the compressed NARs of a file:// cache.
nar_bytes() { du -sb "$1/nar" | cut -f1; }

# The contenders. $root is the shape's store path; $cs_bin the binary.
# Each returns non-zero when its command fails (errexit does not reach into them).
c_ours() { local l; l=$("$measure" "$cs" push -q --to "file://$1" "$root") || return 1; echo "$l $(nar_bytes "$1")"; }
c_base() { local l; l=$("$measure" "$against" push -q --to "file://$1" "$root") || return 1; echo "$l $(nar_bytes "$1")"; }
c_nixcopy() { local l; l=$("$measure" nix copy --to "file://$1?compression=zstd" "$root") || return 1; echo "$l $(nar_bytes "$1")"; }
c_floor() { local l; l=$("$measure" -o "$1.out" "$work/floor" "$run/full.paths") || return 1; echo "$l $(awk '{print $2}' "$1.out")"; }
c_noop() { "$measure" "$cs" push -q --to "file://$noop_cache" "$root"; }
c_basenoop() { "$measure" "$against" push -q --to "file://$noop_cache" "$root"; }
# A push that does not know the closure yet (the first from this machine): a fresh XDG cache each time.
c_coldnoop() { XDG_CACHE_HOME=$(mktemp -d "$run/xdg-cold.XXXXXX") "$measure" "$cs" push -q --to "file://$noop_cache" "$root"; }
c_pathinfo() { "$measure" nix path-info --recursive --json "$root"; }
c_activate() { "$measure" "$cs" activate --state-dir "$state_dir" "$manifest"; }
c_baseactivate() { "$measure" "$against" activate --state-dir "$state_dir" "$manifest"; }

contenders() { # the contenders of a cachix-select shape: ours, and base with --against
  local ours=$1
  shift
  echo "$ours" ${against:+"base$ours"} "$@"
}
contenders_push() { echo ours ${against:+base} "$@"; }

# drop_single SHAPE: remove the (few-file) caches of a single-path shape now.
drop_single() { [ -n "${BENCH_KEEP:-}" ] || rm -rf "$run/$1"-*; }

shapes_run=()
push_shape() { # push_shape SHAPE ATTR [single]
  local shape=$1
  build "$2"; root=$out
  warm "$root"
  say "== $shape: $(nix-store -qR "$root" | wc -l) paths, $(( $(nix path-info -S "$root" | awk '{print $2}') / 1000000 )) MB of NAR"
  run_shape "$shape" "$runs" $(contenders_push nixcopy)
  [ "${3:-}" != single ] || drop_single "$shape"
  shapes_run+=("$shape")
}

if wants full; then
  build big; root=$out
  nix-store -qR "$root" > "$run/full.paths"
  warm "$root"
  say "== full: $(wc -l < "$run/full.paths") paths, $(( $(nix path-info -S "$root" | awk '{print $2}') / 1000000 )) MB of NAR"
  run_shape full "$runs" $(contenders_push nixcopy floor)
  shapes_run+=(full)
fi
for n in 100:tiny100 1000:tiny1k 3000:tiny3k 10000:tiny10k; do
  if wants "${n#*:}"; then push_shape "${n#*:}" "tiny${n%:*}"; fi
done
for s in random1g text100m text1g text4g; do
  if wants "$s"; then push_shape "$s" "$s" single; fi
done

for n in 2000:noop2k 20000:noop20k; do
  shape=${n#*:}
  wants "$shape" || continue
  build "tiny${n%:*}"; root=$out
  noop_cache=$run/$shape-cache
  "$cs" push -q --to "file://$noop_cache" "$root"
  say "== $shape: $(nix-store -qR "$root" | wc -l) paths, all in the cache"
  run_shape "$shape" $((runs * 3)) $(contenders noop pathinfo coldnoop)
  shapes_run+=("$shape")
done

if wants activate; then
  build tiny2000; root=$out
  state_dir=$run/activate-state
  manifest=$run/activate-manifest.json
  printf '{"version":1,"cache":{"url":"file://%s"},"paths":[{"storePath":"%s"}]}\n' "$run/activate-cache" "$root" > "$manifest"
  "$cs" activate -q --mode foreground --strict --state-dir "$state_dir" "$manifest"
  say "== activate: a manifest of a $(nix-store -qR "$root" | wc -l)-path closure, recorded as pushed"
  run_shape activate $((runs * 3)) $(contenders activate pathinfo)
  shapes_run+=(activate)
fi

server_pid= s3_dir=
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  [ -z "$s3_dir" ] || s3srv stop "$s3_dir" || true
}
trap cleanup EXIT

cachix_extra=
if wants cachix; then
  # The strict Cachix test server: a fresh cache for every push, plus one for the no-op.
  token_file=$run/token
  (umask 077; echo "bench-token-$$" > "$token_file")
  # --defer-verification: the server checks each NAR (hashes, sizes,
  # decompression, NAR structure) after the measured push instead of during
  # it, so that its work does not slow ours on the same cores; a push whose
  # data fails the check fails the benchmark.
  server_args=(--token-file "$token_file" --public --defer-verification --cache noop)
  for i in $(seq 1 $((runs * 2))); do server_args+=(--cache "cx$i"); done
  "$work/cachix-test-server" "${server_args[@]}" > "$run/server.json" 2> "$run/server.log" &
  server_pid=$!
  for _ in $(seq 1 100); do [ -s "$run/server.json" ] && break; sleep 0.1; done
  host=$(grep -o '"url":"[^"]*"' "$run/server.json" | head -1 | cut -d'"' -f4)
  control=$(grep -o '"controlURL":"[^"]*"' "$run/server.json" | cut -d'"' -f4)
  [ -n "$host" ] && [ -n "$control" ] || { say "the test server did not start"; cat "$run/server.log" >&2; exit 1; }
  # cx_push BIN CACHE-NUMBER (contenders run in subshells: the round comes from their directory name).
  cx_push() {
    local l v
    l=$("$measure" "$1" push -q --host "$host" --cache "cx$2" --auth-token-file "$token_file" "$root") || return 1
    v=$(curl -fsS -X POST "$control/verify") || return 1
    case $v in
      *'"failures":[]'*) ;;
      *) echo "the test server found bad data in the push to cx$2: $v" >&2; return 1 ;;
    esac
    case $v in '{"checked":0,'*) echo "the test server had no NAR to verify after the push to cx$2" >&2; return 1 ;; esac
    echo "$l"
  }
  c_cachix() { cx_push "$cs" "${1##*-}"; }
  c_basecachix() { cx_push "$against" $(( ${1##*-} + runs )); }
  build big; root=$out
  warm "$root"
  say "== cachix: the full closure to the Cachix test server on loopback"
  run_shape cachix "$runs" $(contenders cachix ours nixcopy)
  shapes_run+=(cachix)
  # No-op of 2,000 paths: count the requests.
  build tiny2000; root=$out
  "$cs" push -q --host "$host" --cache noop --auth-token-file "$token_file" "$root"
  curl -fsS -X POST "$control/reset" > /dev/null
  read -r t _ < <("$measure" "$cs" push -q --host "$host" --cache noop --auth-token-file "$token_file" "$root")
  stats=$(curl -fsS "$control/stats")
  count_of() { printf '%s' "$stats" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
  bulk=$(count_of narinfo-bulk); info=$(count_of cache-info)
  total=$(printf '%s' "$stats" | sed 's/.*"Requests":{\([^}]*\)}.*/\1/' | tr ',' '\n' | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
  n=$(nix-store -qR "$root" | wc -l); want_bulk=$(( (n + 32767) / 32768 ))
  met=$( [ "${bulk:-0}" = "$want_bulk" ] && [ "${info:-0}" -le 1 ] && [ "${total:-99}" -le $((want_bulk + 1)) ] && echo met || echo MISSED )
  cachix_extra="no-op push of $n present paths to the Cachix test server: $t s, ${total:-?} requests (${bulk:-?} bulk queries, want $want_bulk; ${info:-0} cache-info, want ≤ 1): $met"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
fi

s3_extra=
if wants s3; then
  if [ -x "$(s3srv path)" ]; then
    s3_dir=$run/s3-server
    export S3_SERVER_USER=bench S3_SERVER_PASSWORD="bench-secret-$$"
    s3_port=$(( 20000 + RANDOM % 20000 ))
    s3srv start "$s3_dir" "$s3_port" us-east-1 $$
    s3_ep=127.0.0.1:$s3_port
    s3_url() { printf 's3://%s?endpoint=%s&scheme=http' "$1" "$s3_ep"; }
    s3_env() { AWS_ACCESS_KEY_ID=$S3_SERVER_USER AWS_SECRET_ACCESS_KEY=$S3_SERVER_PASSWORD "$@"; }
    # s3_push BIN DIR: a fresh bucket named after the contender's directory.
    s3_push() {
      local b; b=$(basename "$2")
      "$work/s3bucket" "$s3_ep" "$b" || return 1
      s3_env "$measure" "$1" push -q --to "$(s3_url "$b")" "$root"
    }
    c_s3() { s3_push "$cs" "$1"; }
    c_bases3() { s3_push "$against" "$1"; }
    build big; root=$out
    warm "$root"
    say "== s3: the full closure to MinIO on loopback"
    run_shape s3 "$runs" $(contenders s3 ours nixcopy)
    shapes_run+=(s3)
    build tiny2000; root=$out
    "$work/s3bucket" "$s3_ep" noop
    s3_env "$cs" push -q --to "$(s3_url noop)" "$root"
    read -r t _ < <(s3_env "$measure" "$cs" push -q --to "$(s3_url noop)" "$root")
    requests=$(s3_env "$cs" push -v --to "$(s3_url noop)" "$root" 2>&1 | grep -o 'method=[A-Z]*' | sort | uniq -c | awk '{printf "%s%s %s", (n++ ? ", " : ""), $1, substr($2, 8)}')
    build random1g; root=$out
    "$work/s3bucket" "$s3_ep" huge
    read -r ht hrss hcpu < <(s3_env "$measure" "$cs" push -q --to "$(s3_url huge)" "$root")
    "$work/s3bucket" "$s3_ep" nixcopy
    build tiny100
    if out=$(s3_env nix copy --to "$(s3_url nixcopy)" "$out" 2>&1); then
      nixs3="nix copy --to s3:// works with this Nix: compare by hand"
    else
      nixs3="nix copy --to s3:// cannot run here: $(printf '%s' "$out" | grep -m1 . | cut -c1-100)"
    fi
    s3srv stop "$s3_dir"; s3_dir=
    s3_extra="S3: no-op push of 2,000 present paths $t s, requests: ${requests:-?}; one 1 GiB random file $ht s, $hcpu CPU-s, peak RSS $((hrss / 1024)) MiB; $nixs3"
  else
    s3_extra="S3: skipped, the MinIO test server is not built (tests/lib/s3-server.sh build)"
  fi
fi

spawns_extra=
if wants spawns; then
  counts=()
  for n in 100 3000 10000; do
    build "tiny$n"; root=$out
    strace -f -qq -e trace=execve -e signal=none -o "$run/spawns-$n.strace" "$cs" push -q --to "file://$run/spawns-$n" "$root"
    counts+=("$(grep -c -E 'execve\("[^"]*/nix(-[a-z-]+)?", .* = 0$' "$run/spawns-$n.strace" || true)")
  done
  spawns_extra="nix processes one push starts: ${counts[0]} for 100 paths, ${counts[1]} for 3,000, ${counts[2]} for 10,000: $( [ "${counts[0]}" = "${counts[1]}" ] && [ "${counts[1]}" = "${counts[2]}" ] && echo "met (constant)" || echo "MISSED (grows with the paths)" )"
fi

# The table.
mib() { awk -v k="$1" 'BEGIN {if (k == "nan") print "–"; else printf "%d", k / 1024}'; }
sec() { awk -v s="$1" 'BEGIN {if (s == "nan") print "–"; else printf "%.2f", s}'; }
# row SHAPE LABEL OURS REF REFLABEL [RATIO-TARGET [SIZE-TARGET [RSS-TARGET-MIB]]]
row() {
  local shape=$1 label=$2 o=$3 r=$4 rl=$5 tr=${6:-} ts=${7:-} trss=${8:-}
  local ow rw ratio size=– os rs targets=() extra= b=base$3
  [ "$o" = ours ] && b=base
  ow=$(col "$shape" "$o" 1); rw=$(col "$shape" "$r" 1)
  ratio=$(ratio "$ow" "$rw")
  os=$(col "$shape" "$o" 4); rs=$(col "$shape" "$r" 4)
  [ "$os" = nan ] || [ "$rs" = nan ] || size=$(ratio "$os" "$rs")
  [ -z "$tr" ] || targets+=("≤ $tr: $(verdict "$ratio" "$tr")")
  [ -z "$ts" ] || targets+=("size ≤ $ts: $(verdict "$size" "$ts")")
  [ -z "$trss" ] || targets+=("RSS ≤ $trss MiB: $(verdict "$(mib "$(col "$shape" "$o" 2)")" "$trss")")
  if [ -n "$against" ]; then
    if [ -s "$res/$shape.$b" ]; then
      extra=" $(sec "$(col "$shape" "$b" 1)") s ($(range "$shape" "$b")), $(sec "$(col "$shape" "$b" 3)") CPU-s, $(mib "$(col "$shape" "$b" 2)") MiB | **$(ratio "$ow" "$(col "$shape" "$b" 1)")**$(pairs "$shape" "$o" "$b") |"
    else
      extra="  |  |"
    fi
  fi
  local t
  t=$(printf '%s; ' "${targets[@]}"); t=${t%; }
  printf '| %s | %s s (%s) | %s: %s s (%s) | **%s**%s | %s / %s | %s / %s | %s | %s |%s\n' \
    "$label" "$(sec "$ow")" "$(range "$shape" "$o")" "$rl" "$(sec "$rw")" "$(range "$shape" "$r")" "$ratio" "$(pairs "$shape" "$o" "$r")" \
    "$(sec "$(col "$shape" "$o" 3)")" "$(sec "$(col "$shape" "$r" 3)")" \
    "$(mib "$(col "$shape" "$o" 2)")" "$(mib "$(col "$shape" "$r" 2)")" "$size" "$t" "$extra"
}

{
  echo
  echo "cachix-select benchmark: $(nproc) cores, $(nix --version | head -1), $(date -u +%F), medians of $runs rounds (no-ops: $((runs * 3))); in brackets the range of the wall times, and of the round-by-round ratios; the machine was $(sort -g "$res/idle" | awk '{a[NR]=$1} END {printf "%d–%d %% idle (median %d %%)", a[1], a[NR], a[int((NR+1)/2)]}') in the half second before each measurement"
  echo
  printf '| shape | cachix-select | reference | ratio | CPU-s (ours / ref) | peak RSS MiB (ours / ref) | size ratio | target |%s\n' "${against:+ --against | ours / against |}"
  printf '|---|---|---|---|---|---|---|---|%s\n' "${against:+---|---|}"
  for s in "${shapes_run[@]}"; do
    case $s in
      full) row full "full push, $(wc -l < "$run/full.paths") paths, $(( $(nix path-info -S "${built[big]}" | awk '{print $2}') / 1000000 )) MB NAR, file://" ours nixcopy "nix copy" 0.50 1.05 128
            row full "the floor (read, hash twice, zstd on all cores, write nothing)" floor nixcopy "nix copy" "" ;;
      tiny100) row tiny100 "100 tiny chained paths" ours nixcopy "nix copy" "" ;;
      tiny1k) row tiny1k "1,000 tiny chained paths" ours nixcopy "nix copy" "" ;;
      tiny3k) row tiny3k "3,000 tiny chained paths" ours nixcopy "nix copy" 0.50 ;;
      tiny10k) row tiny10k "10,000 tiny chained paths" ours nixcopy "nix copy" "" ;;
      random1g) row random1g "one 1 GiB random file" ours nixcopy "nix copy" "" 1.05 64 ;;
      text100m) row text100m "one 100 MB compressible file" ours nixcopy "nix copy" "" 1.05 ;;
      text1g) row text1g "one 1 GiB compressible file" ours nixcopy "nix copy" 0.60 1.05 64 ;;
      text4g) row text4g "one 4 GiB compressible file" ours nixcopy "nix copy" "" 1.05 ;;
      noop2k) row noop2k "no-op, 2,000 present paths (closure known from the push before)" noop pathinfo "nix path-info -r --json" 1.00
              row noop2k "… the closure not known yet (first push from this machine)" coldnoop pathinfo "nix path-info -r --json" 1.00 ;;
      noop20k) row noop20k "no-op, 20,000 present paths (closure known from the push before)" noop pathinfo "nix path-info -r --json" 1.00
               row noop20k "… the closure not known yet (first push from this machine)" coldnoop pathinfo "nix path-info -r --json" 1.00 ;;
      activate) row activate "activate, nothing new (2,000-path closure)" activate pathinfo "nix path-info -r --json" 1.00 ;;
      cachix) row cachix "full push to the Cachix test server (loopback)" cachix nixcopy "nix copy (file://)" "" "" 128
              row cachix "… against cachix-select's file:// push, same rounds" cachix ours "file:// push" "" ;;
      s3) row s3 "full push to S3 (MinIO, loopback)" s3 nixcopy "nix copy (file://)" ""
          row s3 "… against cachix-select's file:// push, same rounds" s3 ours "file:// push" "" ;;
    esac
  done
  echo
  if [ -s "$res/cachix.cachix" ]; then
    cr=$(ratio "$(col cachix cachix 3)" "$(col cachix ours 3)")
    echo "* Cachix client CPU-seconds: $(sec "$(col cachix cachix 3)") against $(sec "$(col cachix ours 3)") for the file:// push = $cr × (target ≤ 1.15: $(verdict "$cr" 1.15))"
  fi
  [ -z "$cachix_extra" ] || echo "* $cachix_extra"
  [ -z "$s3_extra" ] || echo "* $s3_extra"
  [ -z "$spawns_extra" ] || echo "* $spawns_extra"
  echo "* raw figures (wall s, peak RSS KiB, CPU-s, output bytes): $res"
}

if [ -z "${BENCH_KEEP:-}" ]; then
  say "== removing this run's caches"
  find "$run" -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} +
fi

#!/usr/bin/env bash
# The S3 server the tests push to: MinIO, built from the Go module proxy at
# a pinned version into a cache directory outside the repository, and run
# on the loopback interface only, with its data in a directory the caller
# gives (a temporary one), its web console off and no update checks.
#
#   tests/lib/s3-server.sh path             where the binary is (built or not)
#   tests/lib/s3-server.sh build            build it unless it is there (a few minutes, once)
#   tests/lib/s3-server.sh start DIR PORT [REGION [OWNER-PID]]
#        start it on 127.0.0.1:PORT (MinIO adds the other loopback address,
#        [::1]:PORT, itself; nothing listens beyond loopback) with data, HOME and logs in DIR (DIR/pid,
#        DIR/log); the root credentials come from $S3_SERVER_USER and
#        $S3_SERVER_PASSWORD; REGION defaults to us-east-1. Returns once the
#        server answers, or fails (the log says why). With OWNER-PID, the
#        server is also stopped when that process ends (a test binary killed
#        by its timeout leaves no server behind).
#   tests/lib/s3-server.sh stop DIR         stop the server started in DIR, by its PID
#
# $CACHIX_SELECT_S3_SERVER names another MinIO binary to use.
set -euo pipefail

# MinIO publishes no semver tags, so the module proxy serves it by pseudo-
# version: this is the last commit of github.com/minio/minio (2026-02-12).
S3_SERVER_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

s3_server_bin() {
  if [ -n "${CACHIX_SELECT_S3_SERVER:-}" ]; then
    printf '%s\n' "$CACHIX_SELECT_S3_SERVER"
  else
    printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/cachix-select/minio-$S3_SERVER_VERSION/minio"
  fi
}

s3_server_build() {
  local bin dir tmp start
  bin=$(s3_server_bin)
  if [ -x "$bin" ]; then
    echo "s3-server: $bin is built" >&2
    return 0
  fi
  dir=$(dirname "$bin")
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$dir.build.XXXXXX")
  start=$(date +%s)
  echo "s3-server: building MinIO $S3_SERVER_VERSION into $dir (from the Go module proxy; a few minutes)" >&2
  # A temporary GOBIN, renamed into place: an interrupted build leaves no
  # half-written binary behind.
  if ! GOBIN=$tmp GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 \
      go install "github.com/minio/minio@$S3_SERVER_VERSION"; then
    rm -rf "$tmp"
    echo "s3-server: building MinIO failed" >&2
    return 1
  fi
  mkdir -p "$dir"
  mv "$tmp/minio" "$bin"
  rm -rf "$tmp"
  echo "s3-server: built in $(( $(date +%s) - start )) s" >&2
}

s3_server_start() {
  local dir=$1 port=$2 region=${3:-us-east-1} owner=${4:-} bin pid
  bin=$(s3_server_bin)
  [ -x "$bin" ] || { echo "s3-server: $bin is not built (tests/lib/s3-server.sh build)" >&2; return 1; }
  : "${S3_SERVER_USER:?set S3_SERVER_USER}" "${S3_SERVER_PASSWORD:?set S3_SERVER_PASSWORD}"
  mkdir -p "$dir/data" "$dir/home" "$dir/certs"
  # Only the settings below reach MinIO: env -i drops the caller's MINIO_*.
  env -i PATH=/usr/bin:/bin HOME="$dir/home" \
    MINIO_ROOT_USER="$S3_SERVER_USER" MINIO_ROOT_PASSWORD="$S3_SERVER_PASSWORD" \
    MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off MINIO_CI_CD=1 \
    MINIO_SITE_REGION="$region" \
    "$bin" server --quiet --address "127.0.0.1:$port" --certs-dir "$dir/certs" "$dir/data" \
    > "$dir/log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$dir/pid"
  if [ -n "$owner" ]; then
    ( while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
      kill "$pid" 2>/dev/null ) > /dev/null 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "s3-server: MinIO exited at start; $dir/log:" >&2
      cat "$dir/log" >&2
      return 1
    fi
    if s3_server_live "$port"; then
      return 0
    fi
    sleep 0.2
  done
  echo "s3-server: MinIO did not answer on 127.0.0.1:$port within 30 s" >&2
  s3_server_stop "$dir"
  return 1
}

# s3_server_live asks MinIO's liveness endpoint, with bash alone (no curl).
s3_server_live() {
  local status
  { exec 3<> "/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /minio/health/live HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 status <&3 || status=
  exec 3>&-
  [[ $status == "HTTP/1."?" 200"* ]]
}

s3_server_stop() {
  local dir=$1 pid
  [ -s "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid"; return 0; }
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1-}" in
    path) s3_server_bin ;;
    build) s3_server_build ;;
    start) shift; s3_server_start "$@" ;;
    stop) shift; s3_server_stop "$@" ;;
    *) echo "usage: $0 path | build | start DIR PORT [REGION] | stop DIR" >&2; exit 2 ;;
  esac
fi

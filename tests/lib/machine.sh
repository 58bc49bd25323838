# Sourced: run commands in a Debian root of tests/lib/debian-root (trixie
# unless machine_prepare is told sid),
# either once (in_root: a fresh container, not booted) or in a booted
# systemd (machine_boot, machine_exec, machine_stop). Every container is
# `systemd-nspawn --volatile=overlay`: the root is read-only underneath and
# each container's writes vanish with it. The host network is shared
# (no --private-network), so services on the host's 127.0.0.1 are reachable.
#
# machine_prepare decides whether this machine can do it at all: it prints
# "SKIP: <why>" and returns 1 when it cannot (no root, no systemd-nspawn,
# no debootstrap or mirror), except with CI=true, where it fails instead.

# The PATH and environment commands get inside a container.
MACHINE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# machine_skip reports that a test cannot run here: SKIP outside CI, a
# failure (exit 1) in CI.
machine_skip() {
  if [ "${CI-}" = true ]; then
    echo "FAIL: $* (CI=true: this must run in CI; .ci/run installs what it needs)" >&2
    exit 1
  fi
  echo "SKIP: $*"
  return 1
}

# machine_prepare [SUITE] sets MACHINE_ROOT to a ready root of SUITE
# (trixie, the default, or sid; see tests/lib/debian-root), installing
# systemd-nspawn (Debian's systemd-container) when missing. sid is Debian's
# unstable branch, whose packages are now and then uninstallable for a day
# or two: when its root cannot be made, that is a SKIP line even in CI.
machine_prepare() {
  local suite=${1:-trixie} here out status
  here=$(dirname "${BASH_SOURCE[0]}")
  if [ -n "${MACHINE_ROOT-}" ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    machine_skip "the $suite root needs root (debootstrap, systemd-nspawn)"
    return 1
  fi
  if ! command -v systemd-nspawn >/dev/null; then
    if command -v apt-get >/dev/null; then
      echo "installing systemd-nspawn (systemd-container)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null; } || true
    fi
    if ! command -v systemd-nspawn >/dev/null; then
      machine_skip "systemd-nspawn is not installed (Debian: apt-get install systemd-container)"
      return 1
    fi
  fi
  out=$("$here/debian-root" "$suite") && status=0 || status=$?
  case $status in
    0) MACHINE_ROOT=$out ;;
    3)
      machine_skip "cannot make the $suite root here (see above)"
      return 1
      ;;
    *)
      if [ "$suite" = sid ]; then
        echo "SKIP: making the sid root failed today (exit $status, see above): Debian's unstable branch may be uninstallable for a while; the tests under its Nix did not run"
        return 1
      fi
      echo "FAIL: making the $suite root failed (exit $status)" >&2
      exit 1
      ;;
  esac
}

# in_root [NSPAWN-OPTION...] -- COMMAND...: runs COMMAND as root in a fresh
# container of the root, with a clean environment (add --setenv=K=V).
in_root() {
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    opts+=("$1")
    shift
  done
  shift
  systemd-nspawn --quiet --register=no --keep-unit --volatile=overlay --console=pipe \
    --directory="$MACHINE_ROOT" --setenv=PATH="$MACHINE_PATH" "${opts[@]}" "$@" \
    2> >(grep -v 'Attempted to remove disk file system under "/run/systemd/nspawn/propagate' >&2)
}

# machine_boot LOG [NSPAWN-OPTION...]: boots the root's systemd (console
# output in LOG) and waits until it has started up; sets MACHINE_PID (the
# nspawn process) and MACHINE_LEADER (the container's PID 1 as the host
# sees it).
machine_boot() {
  local log=$1 i
  shift
  systemd-nspawn --quiet --register=no --keep-unit --volatile=overlay --boot --console=read-only \
    --directory="$MACHINE_ROOT" "$@" >"$log" 2>&1 </dev/null &
  MACHINE_PID=$!
  MACHINE_LEADER=
  for ((i = 0; i < 300; i++)); do
    MACHINE_LEADER=$(ps -o pid= --ppid "$MACHINE_PID" 2>/dev/null | tr -d ' ' | head -1)
    if [ -n "$MACHINE_LEADER" ] && [ "$(cat "/proc/$MACHINE_LEADER/comm" 2>/dev/null)" = systemd ]; then
      break
    fi
    if ! kill -0 "$MACHINE_PID" 2>/dev/null; then
      echo "systemd-nspawn --boot exited: $(tail -5 "$log")" >&2
      return 1
    fi
    sleep 0.1
  done
  # "degraded" is fine (some unit of the minimal root failed); anything
  # else after 120 s is not.
  # (systemctl cannot answer before the manager's bus is up: ask again.)
  local state end=$((SECONDS + 120))
  while ((SECONDS < end)); do
    state=$(timeout 60 nsenter -t "$MACHINE_LEADER" -a systemctl is-system-running --wait 2>/dev/null) || true
    case $state in
      running | degraded) return 0 ;;
    esac
    sleep 0.2
  done
  echo "the booted root did not come up (state: ${state:-none}): $(tail -5 "$log")" >&2
  return 1
}

# machine_exec COMMAND...: runs COMMAND as root in the booted container, with
# a clean environment plus the VAR=value words given before it through env.
machine_exec() {
  nsenter -t "$MACHINE_LEADER" -a env -i PATH="$MACHINE_PATH" HOME=/root LANG=C.UTF-8 "$@"
}

# machine_stop shuts the booted container down (nspawn forwards SIGTERM as
# a poweroff request) and waits for it, at most 30 s before killing it.
machine_stop() {
  local i
  [ -n "${MACHINE_PID-}" ] || return 0
  kill "$MACHINE_PID" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$MACHINE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$MACHINE_PID" 2>/dev/null; then
    kill -KILL "$MACHINE_PID" 2>/dev/null || true
  fi
  wait "$MACHINE_PID" 2>/dev/null || true
  MACHINE_PID=
}

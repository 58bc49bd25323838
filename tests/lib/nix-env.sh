# Sourced by tests/run and examples/quickstart.sh: makes Nix usable offline
# without touching the user's configuration.
#  - substituters = : nothing here needs a remote cache, and without network
#    every build would otherwise wait on cache.nixos.org;
#  - single-user root installs without a daemon (Debian's nix-bin, as in CI)
#    need "build-users-group =" and no sandbox.
_cs_conf=$'substituters =\nexperimental-features = nix-command flakes'
if [ "$(id -u)" = 0 ] && [ ! -S /nix/var/nix/daemon-socket/socket ]; then
  _cs_conf+=$'\nbuild-users-group =\nsandbox = false'
fi
export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}$_cs_conf"
unset _cs_conf

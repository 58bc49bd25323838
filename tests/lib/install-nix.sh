# Sourced: installs Nix from Debian's nix-bin when no nix is on PATH.
if ! command -v nix-build >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing Nix (Debian's nix-bin)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
  else
    echo "Nix is not installed. Install it (https://nixos.org/download) and run this again." >&2
    exit 1
  fi
fi

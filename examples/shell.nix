# A nix-shell that pushes its tools to your cache whenever you enter it,
# without ever making you wait. Copy it next to your project and point
# `cachix-select` at a checkout or a release tarball:
#
#   nix-shell --arg cachix-select 'builtins.fetchTarball "https://github.com/cachix-select/cachix-select/archive/main.tar.gz"'
#
# On entry the hook prints one line when something is new ("pushing 1 new
# path … in the background"), nothing otherwise; the push runs detached,
# one at a time per user, with its output in
# ~/.local/state/cachix-select/push.log. Offline? It stays queued
# (`cachix-select queue list`) and goes out on the next entry or with
# `cachix-select queue flush`.
{
  pkgs ? import <nixpkgs> { },
  cachix-select ? ../.,
}:
let
  cachixSelectPackage = pkgs.callPackage (cachix-select + "/modules/package.nix") { };
  # What this project builds and wants cached.
  myTool = pkgs.writeShellScriptBin "my-tool" ''echo "hello from my tool"'';
in
pkgs.mkShell {
  packages = [
    myTool
    cachixSelectPackage
  ];
  shellHook = import (cachix-select + "/modules/shell.nix") {
    inherit pkgs;
    package = cachixSelectPackage;
  } {
    cacheName = "mycache";
    # A string, read when pushing; null: $CACHIX_AUTH_TOKEN or
    # ~/.config/cachix/cachix.dhall.
    authTokenFile = null;
    packages = [ myTool ];
  };
}

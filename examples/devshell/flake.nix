# A dev shell that pushes the project's tools, and the shell's own inputs,
# to your cache whenever someone enters it (`nix develop`, direnv's
# `use flake`). The hook never
# makes the shell wait: it prints one line when there is something new,
# nothing otherwise, and pushes in the background (log:
# ~/.local/state/cachix-select/push.log).
#
# For CI, the same selection as a manifest:
#   nix build .#cachix-manifest -o manifest.json
#   nix run github:cachix-select/cachix-select -- push manifest.json
{
  description = "A dev shell whose tools cachix-select pushes to a Cachix cache";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    cachix-select = {
      url = "github:cachix-select/cachix-select";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { nixpkgs, cachix-select, ... }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      # What this project builds and wants cached.
      myTool = pkgs.writeShellScriptBin "my-tool" ''echo "hello from my tool"'';
      # What the dev shell is made of.
      shellInputs = {
        packages = [ myTool ];
      };
      selection = {
        inherit pkgs;
        cacheName = "mycache";
        # null: $CACHIX_AUTH_TOKEN or ~/.config/cachix/cachix.dhall
        # (what `cachix authtoken` writes).
        authTokenFile = null;
        packages = [ myTool ];
      };
    in
    {
      packages.${system} = {
        default = myTool;
        cachix-manifest = cachix-select.lib.mkManifest selection;
      };

      # pushShellInputs also pushes the shell's own inputs (stdenv and the
      # closures of its packages), so that entering it on another machine
      # fetches them from the cache. The hook cannot see this mkShell, so
      # it is given the same inputs.
      devShells.${system}.default = pkgs.mkShell (
        shellInputs
        // {
          shellHook = cachix-select.lib.shellHook (
            selection
            // {
              pushShellInputs = true;
              inherit shellInputs;
            }
          );
        }
      );
    };
}

# home-manager with cachix-select: every `home-manager switch` pushes the
# packages you build yourself (and their closures) to your Cachix cache,
# in the background, without ever failing the switch.
#
#   home-manager switch --flake .#alice
#   cachix-select queue list      # what is still waiting (offline, cache down)
{
  description = "home-manager configuration that pushes selected packages with cachix-select";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    home-manager = {
      url = "github:nix-community/home-manager";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    cachix-select = {
      url = "github:cachix-select/cachix-select";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      nixpkgs,
      home-manager,
      cachix-select,
      ...
    }:
    {
      homeConfigurations.alice = home-manager.lib.homeManagerConfiguration {
        pkgs = nixpkgs.legacyPackages.x86_64-linux;
        modules = [
          cachix-select.homeModules.default
          (
            { config, pkgs, ... }:
            {
              home.username = "alice";
              home.homeDirectory = "/home/alice";
              home.stateVersion = "25.05";

              # Your own neovim build (wrapped with your plugins): nobody
              # else caches it.
              programs.neovim = {
                enable = true;
                plugins = [ pkgs.vimPlugins.telescope-nvim ];
              };

              cachix = {
                cacheName = "alice"; # https://alice.cachix.org
                # A string, read when pushing; never a path literal (that
                # would copy the token into the world-readable store).
                # null: $CACHIX_AUTH_TOKEN or ~/.config/cachix/cachix.dhall.
                authTokenFile = "/home/alice/.config/cachix/token";
                # Any module can add to this list; duplicates are pushed once.
                pushPackages = [ config.programs.neovim.finalPackage ];
                # Keep the last 3 builds in Cachix as pins named
                # laptop-x86_64-linux-neovim.
                pin = {
                  enable = true;
                  prefix = "laptop";
                  keep.revisions = 3;
                };
                # Or keep the token in a cachix.dhall of your choosing:
                # configFile = "/home/alice/secrets/cachix.dhall";
                # Push the whole home-manager generation too, pinned as
                # laptop-x86_64-linux-generation:
                # pushGeneration = true;
              };
            }
          )
        ];
      };
    };
}

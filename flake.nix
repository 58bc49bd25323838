{
  description = "cachix-select: push selected Nix store paths and their closures to Cachix or a Nix binary cache";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      # forAllSystems builds one attribute per system (builtins only, so the
      # outputs that need no nixpkgs evaluate without it).
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f system;
          }) systems
        );
      pure = import ./modules/lib.nix;

      # A fixed version rather than the git revision: stamping the revision
      # would rebuild the package on every commit, docs included.
      version = "0.1.0-pre";
      mkPackage = pkgs: pkgs.callPackage ./modules/package.nix { inherit version; };

      # packageFor is this flake's build for the system of pkgs.
      packageFor =
        pkgs: self.packages.${pkgs.stdenv.hostPlatform.system}.default or (mkPackage pkgs);

      # withPackage makes a module's cachix.package default to this flake's build.
      withPackage =
        file:
        { lib, pkgs, ... }:
        {
          imports = [ file ];
          cachix.package = lib.mkDefault (packageFor pkgs);
        };
    in
    {
      packages = forAllSystems (
        system:
        let
          package = mkPackage nixpkgs.legacyPackages.${system};
        in
        {
          default = package;
          cachix-select = package;
        }
      );

      apps = forAllSystems (system: {
        default = {
          type = "app";
          program = "${self.packages.${system}.default}/bin/cachix-select";
          meta.description = "cachix-select command line";
        };
      });

      overlays.default = final: prev: { cachix-select = mkPackage final; };

      nixosModules.default = withPackage ./modules/nixos.nix;
      homeModules.default = withPackage ./modules/home-manager.nix;
      homeManagerModules.default = self.homeModules.default;

      lib = {
        # mkManifest renders a manifest into the store, checked by the
        # binary while it is built; for CI:
        #   packages.x86_64-linux.cachix-manifest = cachix-select.lib.mkManifest {
        #     inherit pkgs; cacheName = "mycache"; packages = [ self.packages.x86_64-linux.default ];
        #   };
        #   nix build .#cachix-manifest -o manifest.json && cachix-select push manifest.json
        # Takes the manifest's arguments, named as the cachix.* options
        # (packages, cacheName, cacheUrl, host, pin, push, authTokenFile,
        # signingKeyFile; configFile and s3.credentialsFile are checked but
        # have no place in a manifest: give them to `push` as
        # --config / --s3-credentials-file), plus pkgs, and optionally
        # package and origin ("manual" by default). modules/lib.nix's
        # manifestArgs and secretOptions list them.
        mkManifest =
          {
            pkgs,
            package ? packageFor pkgs,
            ...
          }@args:
          pure.writeManifest (
            removeAttrs args [ "pkgs" ]
            // {
              inherit (pkgs) writeTextFile;
              inherit package;
            }
          );

        # shellHook is modules/shell.nix with this flake's package:
        #   pkgs.mkShell {
        #     shellHook = cachix-select.lib.shellHook {
        #       inherit pkgs; cacheName = "mycache"; packages = [ myTool ];
        #     };
        #   }
        shellHook =
          {
            pkgs,
            package ? packageFor pkgs,
            ...
          }@args:
          import ./modules/shell.nix { inherit pkgs package; } (
            removeAttrs args [
              "pkgs"
              "package"
            ]
          );

        # renderManifest is the manifest's JSON text, without nixpkgs; it
        # throws what is wrong with the arguments, as mkManifest does.
        renderManifest = pure.renderManifest;
      };

      checks = forAllSystems (
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          isLinux = builtins.match ".*-linux" system != null;
          example = {
            cacheName = "example";
            authTokenFile = "/run/secrets/cachix-token";
            pin.enable = true;
          };
          nixos = nixpkgs.lib.nixosSystem {
            inherit system;
            modules = [
              self.nixosModules.default
              {
                boot.isContainer = true;
                system.stateVersion = "25.05";
                cachix = example // {
                  pushPackages = [ pkgs.hello ];
                };
              }
            ];
          };
        in
        {
          package = self.packages.${system}.default;

          # Built by writeTextFile with the binary's check: a manifest the
          # binary rejects fails this build.
          manifest = self.lib.mkManifest (
            example
            // {
              inherit pkgs;
              packages = [ pkgs.hello ];
            }
          );

          shell-hook = pkgs.writeText "cachix-select-shell-hook" (
            self.lib.shellHook (
              example
              // {
                inherit pkgs;
                packages = [ pkgs.hello ];
              }
            )
          );
        }
        // (
          if isLinux then
            {
              # The NixOS module in a real NixOS evaluation (assertions
              # included), with its activation snippet and unit.
              nixos-module = builtins.seq nixos.config.system.build.toplevel.drvPath (
                pkgs.writeText "cachix-select-nixos-module" ''
                  ${nixos.config.system.activationScripts.cachixSelect.text}
                  ExecStart=${nixos.config.systemd.services.cachix-select.serviceConfig.ExecStart}
                ''
              );
            }
          else
            { }
        )
      );
    };
}

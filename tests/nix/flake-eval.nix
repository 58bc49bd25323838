# flake.nix's outputs evaluated without nixpkgs: nixpkgs is replaced by
# tests/nix/stub-pkgs.nix, whose buildGoModule records its arguments and
# returns the cachix-select binary under test (`package`). `failures` is
# [] when every case holds; `manifest`, `checks` and `examples` are built
# by tests/nix/run.
{ package, salt }:
let
  pkgPath = builtins.storePath package;
  fixtures = import ../fixtures/closure.nix { inherit salt; };
  systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];

  stub =
    system:
    import ./stub-pkgs.nix {
      inherit system;
      extra = {
        buildGoModule = args: {
          type = "derivation";
          name = "${args.pname}-${args.version}";
          outPath = pkgPath;
          inherit args;
        };
        hello = fixtures.app;
      };
    };

  nixpkgs = {
    legacyPackages = builtins.listToAttrs (map (s: { name = s; value = stub s; }) systems);
    lib = throw "evaluating this output needed nixpkgs.lib";
  };

  self = (import ../../flake.nix).outputs { inherit self nixpkgs; };

  system = "x86_64-linux";
  pkgs = stub system;
  recipe = self.packages.${system}.default.args;
  src = recipe.src;
  fakeLib.mkDefault = content: { _type = "override"; priority = 1000; inherit content; };

  case =
    name: got: want:
    if got == want then null else "${name}: got ${builtins.toJSON got}, want ${builtins.toJSON want}";
  has = text: s: builtins.match ".*${builtins.unsafeDiscardStringContext text}.*" (builtins.unsafeDiscardStringContext s) != null;

  moduleOf = m: m { lib = fakeLib; inherit pkgs; };
  nixosModule = moduleOf self.nixosModules.default;
  homeModule = moduleOf self.homeModules.default;

  hook = self.lib.shellHook {
    inherit pkgs;
    cacheUrl = "file:///tmp/cachix-select-flake-test";
    stateDir = "/tmp/cachix-select-flake-test-state";
    packages = [ fixtures.app ];
  };
in
{
  failures = builtins.filter (x: x != null) [
    (case "flake systems" (builtins.attrNames self.packages) (builtins.sort builtins.lessThan systems))
    (case "package pname" recipe.pname "cachix-select")
    (case "package version" recipe.version "0.1.0-pre")
    (case "version stamped by ldflags" (builtins.elem "-X main.version=0.1.0-pre" recipe.ldflags) true)
    (case "only the command is built" recipe.subPackages [ "cmd/cachix-select" ])
    (case "vendorHash is an SRI sha256" (has "sha256-[A-Za-z0-9+/]{43}=" recipe.vendorHash) true)
    (case "source top level" (builtins.attrNames (builtins.readDir src)) [ "cmd" "go.mod" "go.sum" "pushlib" ])
    (case "source keeps Go files" ((builtins.readDir "${src}/pushlib/manifest") ? "manifest.go") true)
    (case "source drops tests" ((builtins.readDir "${src}/pushlib/manifest") ? "manifest_test.go") false)
    (case "source drops testdata" ((builtins.readDir "${src}/pushlib/store") ? "testdata") false)
    (case "packages.cachix-select alias" self.packages.${system}.cachix-select.outPath pkgPath)
    (case "app type" self.apps.${system}.default.type "app")
    (case "app program" self.apps.${system}.default.program "${pkgPath}/bin/cachix-select")
    (case "overlay adds cachix-select" ((self.overlays.default pkgs pkgs).cachix-select.args.pname) "cachix-select")
    (case "homeManagerModules alias" (moduleOf self.homeManagerModules.default).imports [ ../../modules/home-manager.nix ])
    (case "nixos module imports" nixosModule.imports [ ../../modules/nixos.nix ])
    (case "home module imports" homeModule.imports [ ../../modules/home-manager.nix ])
    (case "modules default the package to the flake's" nixosModule.cachix.package.content.outPath pkgPath)
    (case "module package is only a default" nixosModule.cachix.package.priority 1000)
    (case "lib.shellHook calls activate" (has "${pkgPath}/bin/cachix-select activate --mode background --state-dir /tmp/cachix-select-flake-test-state /nix/store/[a-z0-9]{32}-cachix-select-shell.json" hook) true)
    (case "lib.renderManifest" (builtins.fromJSON (self.lib.renderManifest { cacheName = "c"; packages = [ ]; })).cache.name "c")
    (case "lib.renderManifest refuses a path-literal token file (it would be copied into the store)" (builtins.tryEval (self.lib.renderManifest { cacheName = "c"; authTokenFile = ./flake-eval.nix; packages = [ ]; })).success false)
    (case "lib.renderManifest refuses a manifest without a cache" (builtins.tryEval (self.lib.renderManifest { packages = [ ]; })).success false)
    (case "lib.mkManifest refuses bad input" (builtins.tryEval (self.lib.mkManifest { inherit pkgs; packages = [ ]; })).success false)
    (case "checks need no nixpkgs.lib but the NixOS one" (builtins.attrNames self.checks.${system}) [ "manifest" "nixos-module" "package" "shell-hook" ])
  ];

  manifest = self.lib.mkManifest {
    inherit pkgs;
    cacheName = "mycache";
    authTokenFile = "/run/secrets/cachix-token";
    packages = [ fixtures.app ];
    pin.enable = true;
  };

  # The flake's own checks that need no nixpkgs.lib.
  checks = { inherit (self.checks.${system}) manifest shell-hook; };

  # The examples that need no nixpkgs beyond the stub: examples/shell.nix
  # and examples/devshell/flake.nix (its outputs called with the stub
  # nixpkgs and this flake). Building these builds their manifests.
  examples =
    let
      shell = import ../../examples/shell.nix { inherit pkgs; };
      devshell = (import ../../examples/devshell/flake.nix).outputs {
        inherit nixpkgs;
        cachix-select = self;
      };
    in
    {
      shell = pkgs.writeText "example-shell-hook" shell.shellHook;
      devshell = pkgs.writeText "example-devshell-hook" devshell.devShells.${system}.default.shellHook;
      devshellManifest = devshell.packages.${system}.cachix-manifest;
    };
}

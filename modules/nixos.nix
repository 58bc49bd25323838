# NixOS module: push cachix.pushPackages (and, with pushGeneration, the
# system itself) when the system is switched to. The options, the
# manifest and the assertions are common.nix's; this file is the NixOS
# wiring.
#
# Activation (system.activationScripts.cachixSelect) acts only on
# `switch` and `test`, never at boot, and reports on `dry-activate`. In
# background mode it queues the manifest and asks switch-to-configuration
# to start cachix-select.service once systemd has reloaded its units (see
# nixosActivation in lib.nix); the unit pushes with the secrets passed as
# systemd credentials, and a timer retries what is still queued.
{ config, lib, pkgs, ... }:
let
  cfg = config.cachix;
  pure = import ./lib.nix;
  settings = pure.fromOptions { inherit cfg pkgs; };
  stateDir = "/var/lib/cachix-select";
  tokenProblem = pure.nixosTokenProblem ({ inherit (cfg) cacheName cacheUrl mode; } // settings.secrets);
  cacheDirProblem = pure.nixosCacheDirProblem { inherit (cfg) cacheUrl mode retryInterval; };
in
{
  imports = [
    (import ./common.nix {
      origin = "nixos";
      pinPrefix = config: config.networking.hostName;
      pinPrefixText = "config.networking.hostName";
    })
  ];

  config = lib.mkIf settings.active {
    assertions = pure.assertions (builtins.filter (p: p != null) [ tokenProblem cacheDirProblem ]);

    system.activationScripts.cachixSelect = {
      # After "etc": a foreground push may need /etc (nix.conf, TLS
      # certificates); the unit itself is started later, see lib.nix.
      deps = [ "etc" ];
      supportsDryActivation = true;
      text = pure.nixosActivation (
        settings.activation
        // {
          inherit stateDir;
          systemdUnit = "${pure.unitName}.service";
          path = [ "${config.nix.package}/bin" ];
        }
      );
    };

    systemd.services.${pure.unitName} = pure.nixosService (
      {
        inherit (settings) exe;
        inherit (cfg) cacheUrl;
        inherit stateDir;
        unit = pure.unitName;
        nixPackage = config.nix.package;
      }
      // settings.secrets
    );

    systemd.timers.${pure.unitName} = lib.mkIf (cfg.retryInterval != null) (
      pure.nixosTimer { inherit (cfg) retryInterval; }
    );
  };
}

# NixOS module: push cachix.pushPackages when the system is switched to.
#
# Activation (system.activationScripts.cachixSelect) acts only on
# `switch` and `test`, never at boot, and reports on `dry-activate`. In
# background mode it queues the manifest and starts cachix-select.service,
# which pushes after network-online.target with the secrets passed as
# systemd credentials; a timer retries what is still queued.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.cachix;
  pure = import ./lib.nix;
  active = cfg.enable && cfg.pushPackages != [ ];
  exe = "${cfg.package}/bin/cachix-select";
  unit = "cachix-select";
  stateDir = "/var/lib/cachix-select";

  manifestArgs = pure.moduleManifestArgs cfg "nixos";
in
{
  options.cachix = import ./options.nix {
    inherit lib pkgs;
    pinPrefix = config.networking.hostName;
    pinPrefixText = lib.literalExpression "config.networking.hostName";
  };

  config = lib.mkMerge [
    {
      cachix.manifest = pure.writeManifestUnchecked {
        inherit (pkgs) writeTextFile;
        inherit (cfg) package;
        args = manifestArgs;
      };
    }

    (lib.mkIf active {
      assertions = map (message: {
        assertion = false;
        inherit message;
      }) (pure.problems (manifestArgs // { prefix = "cachix."; }));

      system.activationScripts.cachixSelect = {
        # After "etc", so that systemd finds the unit's file when it is new.
        deps = [ "etc" ];
        supportsDryActivation = true;
        text = pure.nixosActivation {
          inherit exe stateDir;
          inherit (cfg) mode strict timeout;
          manifest = "${cfg.manifest}";
          systemdUnit = "${unit}.service";
          path = [
            "${config.nix.package}/bin"
            "${config.systemd.package}/bin"
          ];
        };
      };

      systemd.services.${unit} = pure.nixosService {
        inherit exe stateDir unit;
        inherit (cfg) authTokenFile signingKeyFile;
        nixPackage = config.nix.package;
      };

      systemd.timers.${unit} = lib.mkIf (cfg.retryInterval != null) (pure.nixosTimer {
        inherit (cfg) retryInterval;
      });
    })
  ];
}

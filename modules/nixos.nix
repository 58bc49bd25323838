# NixOS module: push cachix.pushPackages (and, with pushGeneration, the
# system itself) when the system is switched to.
#
# Activation (system.activationScripts.cachixSelect) acts only on
# `switch` and `test`, never at boot, and reports on `dry-activate`. In
# background mode it queues the manifest and asks switch-to-configuration
# to start cachix-select.service once systemd has reloaded its units (see
# nixosActivation in lib.nix); the unit pushes with the secrets passed as
# systemd credentials, and a timer retries what is still queued.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.cachix;
  pure = import ./lib.nix;
  active = cfg.enable && (cfg.pushPackages != [ ] || cfg.pushGeneration);
  exe = "${cfg.package}/bin/cachix-select";
  unit = "cachix-select";
  stateDir = "/var/lib/cachix-select";

  manifestArgs = pure.moduleManifestArgs cfg "nixos";
  generationPin = pure.generationPin {
    inherit (cfg) pin;
    system = pkgs.stdenv.hostPlatform.system;
  };
  tokenProblem = pure.nixosTokenProblem { inherit (cfg) cacheName mode authTokenFile configFile; };
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
      assertions =
        map
          (message: {
            assertion = false;
            inherit message;
          })
          (
            pure.problems (
              manifestArgs
              // {
                prefix = "cachix.";
                inherit (cfg) configFile;
                generationPin = if cfg.pushGeneration then generationPin else null;
              }
            )
            ++ lib.optional (tokenProblem != null) tokenProblem
          );

      system.activationScripts.cachixSelect = {
        # After "etc": a foreground push may need /etc (nix.conf, TLS
        # certificates); the unit itself is started later, see lib.nix.
        deps = [ "etc" ];
        supportsDryActivation = true;
        text = pure.nixosActivation {
          inherit exe stateDir generationPin;
          inherit (cfg)
            mode
            strict
            timeout
            configFile
            pushGeneration
            ;
          manifest = "${cfg.manifest}";
          systemdUnit = "${unit}.service";
          path = [ "${config.nix.package}/bin" ];
        };
      };

      systemd.services.${unit} = pure.nixosService {
        inherit exe stateDir unit;
        inherit (cfg) authTokenFile signingKeyFile configFile;
        nixPackage = config.nix.package;
      };

      systemd.timers.${unit} = lib.mkIf (cfg.retryInterval != null) (
        pure.nixosTimer {
          inherit (cfg) retryInterval;
        }
      );
    })
  ];
}

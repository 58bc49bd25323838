# home-manager module: push cachix.pushPackages (and, with pushGeneration,
# the home-manager generation itself) on `home-manager switch`.
#
# home.activation.cachixSelect runs after writeBoundary (and after
# home-manager reloaded the user units) through `run`: DRY_RUN gets a
# report, VERBOSE a verbose run, and a failure never aborts activation
# unless cachix.strict is set. In background mode the push goes to the
# user unit cachix-select.service when user systemd runs, else to a
# detached process; a user timer retries what is still queued.
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
  useSystemd = config.systemd.user.enable or false;
  nixPackage = config.nix.package or null;

  manifestArgs = pure.moduleManifestArgs cfg "home-manager";
  generationPin = pure.generationPin {
    inherit (cfg) pin;
    system = pkgs.stdenv.hostPlatform.system;
  };
in
{
  options.cachix = import ./options.nix {
    inherit lib pkgs;
    pinPrefix = null;
    pinPrefixText = lib.literalExpression "null";
  }
  // {
    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "${config.xdg.stateHome}/cachix-select";
      defaultText = lib.literalExpression ''"''${config.xdg.stateHome}/cachix-select"'';
      example = "/home/alice/.local/state/cachix-select";
      description = ''
        Where cachix-select keeps its queue, its record of what the cache
        confirmed, and push.log. The default is also the command line's
        default, for every user (root too), so `cachix-select queue list`
        and `cachix-select queue flush` find what activation queued; for
        another directory give them `--state-dir`.
      '';
    };
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
      }) (pure.problems (manifestArgs // {
        prefix = "cachix.";
        inherit (cfg) configFile;
        generationPin = if cfg.pushGeneration then generationPin else null;
      }));

      # After reloadSystemd too, so that a new or changed unit is loaded
      # before activation starts it (ignored when systemd is off).
      home.activation.cachixSelect =
        lib.hm.dag.entryAfter
          [
            "writeBoundary"
            "reloadSystemd"
          ]
          (
            pure.homeManagerActivation {
              inherit exe generationPin;
              inherit (cfg)
                mode
                strict
                timeout
                stateDir
                configFile
                pushGeneration
                ;
              manifest = "${cfg.manifest}";
              systemdUnit = if useSystemd then "${unit}.service" else null;
              systemctlDir = if useSystemd then dirOf config.systemd.user.systemctlPath else null;
            }
          );

      systemd.user.services.${unit} = lib.mkIf useSystemd (pure.homeManagerService {
        inherit exe nixPackage;
        inherit (cfg) stateDir configFile;
      });

      systemd.user.timers.${unit} = lib.mkIf (useSystemd && cfg.retryInterval != null) (pure.homeManagerTimer {
        inherit (cfg) retryInterval;
      });
    })
  ];
}

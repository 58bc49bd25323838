# home-manager module: push cachix.pushPackages (and, with pushGeneration,
# the home-manager generation itself) on `home-manager switch`. The
# options, the manifest and the assertions are common.nix's; this file is
# the home-manager wiring (and cachix.stateDir).
#
# home.activation.cachixSelect runs after writeBoundary (and after
# home-manager reloaded the user units) through `run`: DRY_RUN gets a
# report, VERBOSE a verbose run, and a failure never aborts activation
# unless cachix.strict is set. In background mode the push goes to the
# user unit cachix-select.service when user systemd runs, else to a
# detached process; a user timer retries what is still queued.
{ config, lib, pkgs, ... }:
let
  cfg = config.cachix;
  pure = import ./lib.nix;
  settings = pure.fromOptions { inherit cfg pkgs; };
  useSystemd = config.systemd.user.enable or false;
in
{
  imports = [
    (import ./common.nix {
      origin = "home-manager";
      pinPrefix = _: null;
      pinPrefixText = "null";
    })
  ];

  options.cachix.stateDir = lib.mkOption {
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

  config = lib.mkIf settings.active {
    # After reloadSystemd too, so that a new or changed unit is loaded
    # before activation starts it (ignored when systemd is off).
    home.activation.cachixSelect = lib.hm.dag.entryAfter [ "writeBoundary" "reloadSystemd" ] (
      pure.homeManagerActivation (
        settings.activation
        // {
          inherit (cfg) stateDir;
          systemdUnit = if useSystemd then "${pure.unitName}.service" else null;
          systemctlDir = if useSystemd then dirOf config.systemd.user.systemctlPath else null;
        }
      )
    );

    systemd.user.services.${pure.unitName} = lib.mkIf useSystemd (
      pure.homeManagerService (
        {
          inherit (settings) exe;
          inherit (cfg) stateDir;
          nixPackage = config.nix.package or null;
        }
        // settings.secrets
      )
    );

    systemd.user.timers.${pure.unitName} = lib.mkIf (useSystemd && cfg.retryInterval != null) (
      pure.homeManagerTimer { inherit (cfg) retryInterval; }
    );
  };
}

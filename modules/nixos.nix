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

      systemd.services.${unit} = {
        description = "Push queued Nix store paths to a binary cache (cachix-select)";
        wants = [ "network-online.target" ];
        after = [
          "network-online.target"
          "nix-daemon.socket"
        ];
        path = [ config.nix.package ];
        # Started by activation and the timer; a switch must not restart a push.
        restartIfChanged = false;
        environment = {
          NIX_REMOTE = "daemon";
          HOME = stateDir;
          XDG_CACHE_HOME = "/var/cache/${unit}";
        };
        serviceConfig = {
          Type = "oneshot";
          ExecStart = pure.escapeShellArgs (
            pure.flushArgs {
              inherit exe stateDir;
              authTokenCredential = if cfg.authTokenFile != null then "auth-token" else null;
              signingKeyCredential = if cfg.signingKeyFile != null then "signing-key" else null;
            }
          );
          # The secrets reach the unit as credentials: readable only by it,
          # never in its environment, its command line or the store.
          LoadCredential =
            lib.optional (cfg.authTokenFile != null) "auth-token:${cfg.authTokenFile}"
            ++ lib.optional (cfg.signingKeyFile != null) "signing-key:${cfg.signingKeyFile}";
          StateDirectory = unit;
          StateDirectoryMode = "0700";
          CacheDirectory = unit;
          CacheDirectoryMode = "0700";
          UMask = "0077";
          # Hardening: it reads the store through nix-daemon and talks HTTPS.
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          NoNewPrivileges = true;
          CapabilityBoundingSet = "";
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectProc = "invisible";
          RestrictAddressFamilies = [
            "AF_UNIX"
            "AF_INET"
            "AF_INET6"
            "AF_NETLINK"
          ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" ];
          SystemCallErrorNumber = "EPERM";
        };
      };

      systemd.timers.${unit} = lib.mkIf (cfg.retryInterval != null) {
        description = "Retry the queued pushes of cachix-select";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnBootSec = "10min";
          OnUnitInactiveSec = cfg.retryInterval;
          RandomizedDelaySec = "2min";
        };
      };
    })
  ];
}

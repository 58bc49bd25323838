# The NixOS and home-manager modules under the real module system: nixpkgs'
# lib.evalModules from a nixpkgs (or nixpkgs.lib) checkout, and for
# home-manager its lib extension (lib.hm: the DAG type and topoSort that
# order home.activation). The options the modules set that belong to NixOS
# or home-manager themselves (system.activationScripts, systemd.*,
# home.activation, xdg.stateHome, assertions) are declared by small stubs
# here, with the same types where it matters (home.activation is
# home-manager's own dagOf). pkgs is tests/nix/stub-pkgs.nix.
#
# `report` is one line per check: "ok …" or "FAIL …".
{
  nixpkgsLib,
  homeManager ? null,
  package,
  salt,
}:
let
  lib = import (nixpkgsLib + "/lib");
  inherit (lib) mkOption types;
  pure = import ../../modules/lib.nix;
  pkgs = import ./stub-pkgs.nix { };
  fixtures = import ../fixtures/closure.nix { inherit salt; };
  pkg = {
    type = "derivation";
    name = "cachix-select";
    outPath = builtins.storePath package;
  };
  exe = "${pkg}/bin/cachix-select";
  fakeBin = name: {
    type = "derivation";
    inherit name;
    outPath = "/fake/${name}";
  };

  # check turns a condition into a report line.
  check = name: cond: if cond then "ok ${name}" else "FAIL ${name}";
  # throws tells whether forcing x fails (type errors are throws).
  throws = x: !(builtins.tryEval (builtins.deepSeq x x)).success;
  has = text: s: lib.hasInfix (builtins.unsafeDiscardStringContext text) (builtins.unsafeDiscardStringContext s);
  failed = cfg: map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);
  manifestOf = cfg: builtins.fromJSON (builtins.unsafeDiscardStringContext cfg.cachix.manifest.text);

  common = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
  };
  unitSet = mkOption {
    type = types.attrsOf (types.attrsOf types.anything);
    default = { };
  };

  # --- NixOS -----------------------------------------------------------------
  nixosStubs = {
    options = common // {
      networking.hostName = mkOption {
        type = types.str;
        default = "laptop";
      };
      nix.package = mkOption {
        type = types.package;
        default = fakeBin "nix";
      };
      systemd.package = mkOption {
        type = types.package;
        default = fakeBin "systemd";
      };
      # As in nixpkgs' activation-script.nix.
      system.activationScripts = mkOption {
        default = { };
        type = types.attrsOf (
          types.either types.str (
            types.submodule {
              options = {
                deps = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                };
                text = mkOption { type = types.lines; };
                supportsDryActivation = mkOption {
                  type = types.bool;
                  default = false;
                };
              };
            }
          )
        );
      };
      systemd.services = unitSet;
      systemd.timers = unitSet;
    };
  };

  evalNixosWith =
    pkgs: configs:
    (lib.evalModules {
      modules = [
        nixosStubs
        ../../modules/nixos.nix
        { _module.args.pkgs = pkgs; }
      ]
      ++ configs;
    });
  evalNixos = configs: (evalNixosWith pkgs ([ { cachix.package = pkg; } ] ++ configs)).config;

  nixosBase = {
    cachix = {
      cacheName = "mycache";
      authTokenFile = "/run/secrets/cachix-token";
      signingKeyFile = "/run/secrets/cachix-key";
      pushPackages = [ fixtures.app ];
      pin.enable = true;
    };
  };
  # Another module adds to the list: lists merge, duplicates go.
  nixosMore = {
    cachix.pushPackages = [
      fixtures.exe
      fixtures.app
    ];
  };

  nixosS3 = {
    cachix = {
      cacheUrl = "s3://cache?region=eu-west-1";
      s3.credentialsFile = "/run/secrets/aws-credentials";
      pushPackages = [ fixtures.app ];
    };
  };

  nixos = evalNixos [
    nixosBase
    nixosMore
  ];
  nixosScript = nixos.system.activationScripts.cachixSelect;
  nixosUnit = nixos.systemd.services.cachix-select;
  nixosManifest = manifestOf nixos;

  nixosChecks = [
    (check "NixOS: a valid configuration passes the assertions" (failed nixos == [ ]))
    (check "NixOS: pushPackages merges across modules, without duplicates" (
      lib.sort lib.lessThan (map (p: p.storePath) nixosManifest.paths)
      == lib.sort lib.lessThan [
        "${fixtures.app}"
        "${fixtures.exe}"
      ]
    ))
    (check "NixOS: the manifest names the cache, the secrets' paths and the origin" (
      nixosManifest.cache == {
        name = "mycache";
        host = null;
        url = null;
        authTokenFile = "/run/secrets/cachix-token";
        signingKeyFile = "/run/secrets/cachix-key";
      }
      && nixosManifest.origin == "nixos"
    ))
    (check "NixOS: pins default to <hostName>-<system>-<name>" (
      map (p: p.pin.name) (lib.sort (a: b: a.name < b.name) nixosManifest.paths) == [
        "laptop-${builtins.currentSystem}-app"
        "laptop-${builtins.currentSystem}-exe"
      ]
    ))
    (check "NixOS: the activation snippet is modules/lib.nix's, with nix on PATH" (
      nixosScript.text == pure.nixosActivation {
        inherit exe;
        manifest = "${nixos.cachix.manifest}";
        path = [ "/fake/nix/bin" ];
      }
    ))
    (check "NixOS: background activation hands the unit to switch-to-configuration's restart list" (
      has "--systemd-unit cachix-select.service --restart-list /run/nixos/activation-restart-list --state-dir /var/lib/cachix-select" nixosScript.text
      && !(has "systemctl" nixosScript.text)
    ))
    (check "NixOS: the snippet acts on switch and test only and reports on dry-activate" (
      has "switch | test)" nixosScript.text
      && has "dry-activate)" nixosScript.text
      && nixosScript.supportsDryActivation
      && nixosScript.deps == [ "etc" ]
    ))
    (check "NixOS: the unit gets the secrets as credentials, not in its environment" (
      nixosUnit.serviceConfig.LoadCredential == [
        "auth-token:/run/secrets/cachix-token"
        "signing-key:/run/secrets/cachix-key"
      ]
      && has "\"--auth-token-file\" \"%d/auth-token\" \"--signing-key-file\" \"%d/signing-key\"" nixosUnit.serviceConfig.ExecStart
      && !(has "/run/secrets" nixosUnit.serviceConfig.ExecStart)
      && !(has "/run/secrets" (builtins.toJSON nixosUnit.environment))
    ))
    (check "NixOS: the unit is Type=exec, with pushes that cannot happen now not counted as failures" (
      nixosUnit.serviceConfig.Type == "exec"
      && nixosUnit.serviceConfig.SuccessExitStatus == "1 2 143"
      && (nixosUnit.restartIfChanged or true)
    ))
    (check "NixOS: the unit's ExecStart is quoted for systemd" (
      nixosUnit.serviceConfig.ExecStart == pure.escapeSystemdExecArgs [
        exe
        "queue"
        "flush"
        "--fail-fast"
        "--state-dir"
        "/var/lib/cachix-select"
        "--auth-token-file"
        (pure.credentialPath "auth-token")
        "--signing-key-file"
        (pure.credentialPath "signing-key")
      ]
    ))
    (check "NixOS: the unit runs after network-online.target (without pulling it in), hardened, with its state directory" (
      builtins.elem "network-online.target" nixosUnit.after
      && !(nixosUnit ? wants)
      && nixosUnit.serviceConfig.ProtectSystem == "strict"
      && nixosUnit.serviceConfig.NoNewPrivileges
      && nixosUnit.serviceConfig.StateDirectory == "cachix-select"
      && nixosUnit.serviceConfig.StateDirectoryMode == "0700"
      && nixosUnit.environment.NIX_REMOTE == "daemon"
    ))
    (check "NixOS: a timer retries the queue" (nixos.systemd.timers.cachix-select.timerConfig.OnUnitInactiveSec == "1h"))
    (check "NixOS: retryInterval = null removes the timer" (
      !((evalNixos [ nixosBase { cachix.retryInterval = null; } ]).systemd.timers ? cachix-select)
    ))
    (check "NixOS: foreground mode pushes inside activation with a time limit" (
      has "--mode foreground --timeout 2m" (evalNixos [
        nixosBase
        {
          cachix.mode = "foreground";
          cachix.timeout = "2m";
        }
      ]).system.activationScripts.cachixSelect.text
    ))
    (check "NixOS: nothing happens with an empty pushPackages, and nothing is required" (
      let
        c = evalNixos [ ];
      in
      !(c.system.activationScripts ? cachixSelect) && !(c.systemd.services ? cachix-select) && c.assertions == [ ]
    ))
    (check "NixOS: enable = false switches it off" (
      !((evalNixos [ nixosBase { cachix.enable = false; } ]).system.activationScripts ? cachixSelect)
    ))
    (check "NixOS: a Nix path as authTokenFile is a type error" (
      throws (evalNixos [ nixosBase { cachix.authTokenFile = lib.mkForce ./modules-eval.nix; } ]).cachix.authTokenFile
    ))
    (check "NixOS: a store path as signingKeyFile is a type error" (
      throws (evalNixos [ nixosBase { cachix.signingKeyFile = lib.mkForce "${builtins.storeDir}/x-key"; } ]).cachix.signingKeyFile
    ))
    (check "NixOS: both cacheName and cacheUrl fail an assertion that says what to do" (
      lib.any (m: has "Set only one of cachix.cacheName" m) (failed (evalNixos [
        nixosBase
        { cachix.cacheUrl = "file:///srv/cache"; }
      ]))
    ))
    (check "NixOS: no cache at all fails an assertion" (
      lib.any (m: has "Set cachix.cacheName" m) (failed (evalNixos [
        nixosBase
        { cachix.cacheName = lib.mkForce null; }
      ]))
    ))
    (check "NixOS: a Cachix cache in background mode without authTokenFile or configFile fails an assertion that says what to set" (
      lib.any (m: has "cannot find a token by itself" m && has "cachix.authTokenFile" m && has "cachix.configFile" m) (failed (evalNixos [
        nixosBase
        { cachix.authTokenFile = lib.mkForce null; }
      ]))
    ))
    (check "NixOS: configFile alone satisfies it, and reaches the unit as a credential" (
      let
        c = evalNixos [
          nixosBase
          {
            cachix.authTokenFile = lib.mkForce null;
            cachix.configFile = "/root/.config/cachix/cachix.dhall";
          }
        ];
        u = c.systemd.services.cachix-select.serviceConfig;
      in
      failed c == [ ]
      && builtins.elem "cachix-config:/root/.config/cachix/cachix.dhall" u.LoadCredential
      && has "\"--config\" \"%d/cachix-config\"" u.ExecStart
      && has "--config /root/.config/cachix/cachix.dhall" c.system.activationScripts.cachixSelect.text
    ))
    (check "NixOS: foreground mode needs no token source for the unit" (
      failed (evalNixos [
        nixosBase
        {
          cachix.authTokenFile = lib.mkForce null;
          cachix.mode = "foreground";
        }
      ]) == [ ]
    ))
    (check "NixOS: a store path as configFile is a type error" (
      throws (evalNixos [ nixosBase { cachix.configFile = "${builtins.storeDir}/x-cachix.dhall"; } ]).cachix.configFile
    ))
    (check "NixOS: pushGeneration pushes $systemConfig, pinned as <hostName>-<system>-generation, even with no packages" (
      let
        c = evalNixos [
          {
            cachix = {
              cacheName = "mycache";
              authTokenFile = "/run/secrets/cachix-token";
              pushGeneration = true;
              pin.enable = true;
              pin.keep.days = 30;
            };
          }
        ];
        text = c.system.activationScripts.cachixSelect.text;
      in
      failed c == [ ]
      && has "--root-pin laptop-${builtins.currentSystem}-generation --root-keep-days 30 --root \"$systemConfig\"" text
      && (manifestOf c).paths == [ ]
    ))
    (check "NixOS: without pushGeneration no --root" (!(has "--root" nixosScript.text)))
    (check "NixOS: cachix.push.exclude and push.upstream render into the manifest (defaults left out)" (
      let
        c = evalNixos [
          nixosBase
          {
            cachix.push.exclude = {
              names = [ "*-doc" ];
              maxNarSize = "500M";
              mode = "upstream";
            };
            cachix.push.upstream.keys = [ "company-cache-1" ];
          }
        ];
      in
      failed c == [ ]
      && (manifestOf c).push == {
        omitDeriver = false;
        exclude = {
          names = [ "*-doc" ];
          maxNarSize = "500M";
          mode = "upstream";
        };
        upstream.keys = [ "company-cache-1" ];
      }
    ))
    (check "NixOS: a bad exclude mode or size is a type error" (
      throws (manifestOf (evalNixos [ nixosBase { cachix.push.exclude.mode = "skip"; } ]))
      && throws (manifestOf (evalNixos [ nixosBase { cachix.push.exclude.maxNarSize = "lots"; } ]))
    ))
    (check "NixOS: pushBuildClosures alone activates the module; its packages take closure build, also when in pushPackages" (
      let
        c = evalNixos [
          nixosBase
          { cachix.pushBuildClosures = [ fixtures.app ]; }
        ];
        only = evalNixos [
          {
            cachix = {
              cacheUrl = "file:///srv/cache";
              pushBuildClosures = [ fixtures.exe ];
            };
          }
        ];
      in
      failed c == [ ]
      && (manifestOf c).paths == [
        {
          name = "app";
          storePath = "${fixtures.app}";
          closure = "build";
          pin.name = "laptop-${builtins.currentSystem}-app";
        }
      ]
      && only.system.activationScripts ? cachixSelect
      && (manifestOf only).paths == [
        {
          name = "exe";
          storePath = "${fixtures.exe}";
          closure = "build";
        }
      ]
    ))
    (check "NixOS: an s3:// cache with s3.credentialsFile: the unit loads it as a credential and passes %d, activation passes its path, the manifest does not hold it" (
      let
        c = evalNixos [ nixosS3 ];
        u = c.systemd.services.cachix-select.serviceConfig;
      in
      failed c == [ ]
      && u.LoadCredential == [ "s3-credentials:/run/secrets/aws-credentials" ]
      && has "\"--s3-credentials-file\" \"%d/s3-credentials\"" u.ExecStart
      && !(has "/run/secrets" u.ExecStart)
      && has "--s3-credentials-file /run/secrets/aws-credentials" c.system.activationScripts.cachixSelect.text
      && (manifestOf c).cache.url == "s3://cache?region=eu-west-1"
      && !(has "aws-credentials" c.cachix.manifest.text)
    ))
    (check "NixOS: s3.credentialsFile with a Cachix cache fails an assertion that says what to do" (
      failed (evalNixos [
        nixosBase
        { cachix.s3.credentialsFile = "/run/secrets/aws-credentials"; }
      ]) == [
        "cachix.s3.credentialsFile is the AWS credentials file of an s3:// cache, but the cache is the Cachix cache cachix.cacheName: set cachix.cacheUrl to the bucket (\"s3://BUCKET?region=REGION\"), or remove cachix.s3.credentialsFile."
      ]
    ))
    (check "NixOS: s3.credentialsFile with a file:// cache fails an assertion too" (
      lib.any (m: has "but cachix.cacheUrl is file:///srv/cache" m) (failed (evalNixos [
        nixosS3
        { cachix.cacheUrl = lib.mkForce "file:///srv/cache"; }
      ]))
    ))
    (check "NixOS: a store path as s3.credentialsFile is a type error" (
      throws (evalNixos [ nixosS3 { cachix.s3.credentialsFile = lib.mkForce "${builtins.storeDir}/x-aws"; } ]).cachix.s3.credentialsFile
    ))
    (check "NixOS: an s3:// cache in background mode without s3.credentialsFile fails an assertion (the unit would find no keys); foreground needs none" (
      let
        without = { cachix.s3.credentialsFile = lib.mkForce null; };
      in
      lib.any (m: has "cannot find S3 keys by itself" m && has "cachix.s3.credentialsFile" m) (failed (evalNixos [
        nixosS3
        without
      ]))
      && failed (evalNixos [ nixosS3 without { cachix.mode = "foreground"; } ]) == [ ]
    ))
    (check "NixOS: a file:// cache is made writable for the hardened unit (ReadWritePaths; a home directory through ProtectHome=tmpfs)" (
      let
        unit = url: (evalNixos [
          nixosBase
          { cachix.cacheName = lib.mkForce null; cachix.authTokenFile = lib.mkForce null; cachix.cacheUrl = url; }
        ]).systemd.services.cachix-select.serviceConfig;
      in
      (unit "file:///srv/nix-cache").ReadWritePaths == [ "-/srv/nix-cache" ]
      && (unit "file:///home/alice/cache?compression=zstd").BindPaths == [ "-/home/alice/cache" ]
      && (unit "file:///home/alice/cache").ProtectHome == "tmpfs"
    ))
    (check "NixOS: a file:// cache under /tmp fails an assertion (the unit's /tmp is its own); in foreground without retries it passes" (
      let
        at = extra: failed (evalNixos [
          nixosBase
          ({ cachix.cacheName = lib.mkForce null; cachix.authTokenFile = lib.mkForce null; cachix.cacheUrl = "file:///tmp/cache"; } // extra)
        ]);
      in
      lib.any (m: has "PrivateTmp" m) (at { })
      && at { cachix.mode = "foreground"; cachix.retryInterval = null; } == [ ]
    ))
    (check "NixOS: cachix.timeout = \"0s\" fails an assertion" (
      lib.any (m: has "no time at all" m) (failed (evalNixos [ nixosBase { cachix.timeout = "0s"; } ]))
    ))
    (check "NixOS: each problem is asserted once (the common module holds the assertions)" (
      failed (evalNixos [
        nixosBase
        { cachix.cacheUrl = "file:///srv/cache"; }
      ]) == [
        "Set only one of cachix.cacheName (a Cachix cache) and cachix.cacheUrl (a plain binary cache), not both."
      ]
    ))
    (check "NixOS: a bad pin keep policy fails an assertion" (
      lib.any (m: has "cachix.pin.keep" m) (failed (evalNixos [
        nixosBase
        { cachix.pin.keep = { hours = 3; }; }
      ]))
    ))
  ];

  # Every option has a type, a description, a default and an example,
  # except the read-only manifest (set by the module, nothing to choose).
  optionDocs =
    options:
    let
      all = lib.collect lib.isOption options.cachix;
      missing = lib.filter (
        o:
        o.description or null == null
        || !(o ? type)
        || (!(o.readOnly or false) && !(o ? default && o ? example))
      ) all;
    in
    map (o: lib.showOption o.loc) missing;

  nixosOptions = (evalNixosWith pkgs [ ]).options;

  # Where the options are declared: file names relative to modules/.
  declaredIn =
    options:
    lib.mapAttrs (_: o: map (f: baseNameOf (toString f)) o.declarations) (
      lib.listToAttrs (
        map (o: lib.nameValuePair (lib.showOption o.loc) o) (lib.collect lib.isOption options.cachix)
      )
    );

  # With the overlay: pkgs has cachix-select.
  overlaid = evalNixosWith (import ./stub-pkgs.nix { extra.cachix-select = pkg; }) [ nixosBase ];

  docChecks = [
    (check "NixOS: every cachix option has type, default, example and description (missing: ${toString (optionDocs nixosOptions)})" (
      optionDocs nixosOptions == [ ]
    ))
    (check "NixOS: every cachix option is declared once, by modules/common.nix" (
      lib.all (files: files == [ "common.nix" ]) (lib.attrValues (declaredIn nixosOptions))
      && (declaredIn nixosOptions) ? "cachix.s3.credentialsFile"
    ))
    (check "cachix.package is a mkPackageOption: pkgs.cachix-select by default, documented as such" (
      nixosOptions.cachix.package.defaultText.text == "pkgs.cachix-select"
      && lib.hasPrefix "The cachix-select package to use. It checks the manifest" nixosOptions.cachix.package.description
      && nixosOptions.cachix.package.type.name == "package"
    ))
    (check "with the flake's overlay (pkgs.cachix-select), cachix.package defaults to it" (
      overlaid.config.cachix.package.outPath == pkg.outPath
      && failed overlaid.config == [ ]
      && has "${pkg}/bin/cachix-select activate" overlaid.config.system.activationScripts.cachixSelect.text
    ))
    (check "without the flake's module wrapper or overlay, cachix.package stops evaluation (with a message)" (
      throws nixosOptions.cachix.package.value
    ))
  ];

  # --- home-manager ------------------------------------------------------------
  hmChecks =
    let
      hmLib = import (homeManager + "/modules/lib/stdlib-extended.nix") lib;
      hmStubs =
        { lib, ... }:
        {
          options = common // {
            home.activation = mkOption {
              type = lib.hm.types.dagOf types.str;
              default = { };
            };
            systemd.user.enable = mkOption {
              type = types.bool;
              default = true;
            };
            systemd.user.systemctlPath = mkOption {
              type = types.str;
              default = "/fake/systemd/bin/systemctl";
            };
            systemd.user.services = unitSet;
            systemd.user.timers = unitSet;
            xdg.stateHome = mkOption {
              type = types.str;
              default = "/home/alice/.local/state";
            };
            nix.package = mkOption {
              type = types.nullOr types.package;
              default = null;
            };
          };
          # The entries of home-manager's own activation that ours is ordered against.
          config.home.activation = {
            writeBoundary = lib.hm.dag.entryAnywhere "";
            linkGeneration = lib.hm.dag.entryAfter [ "writeBoundary" ] "";
            reloadSystemd = lib.hm.dag.entryAfter [ "linkGeneration" ] "";
            onFilesChange = lib.hm.dag.entryAfter [ "linkGeneration" ] "";
          };
        };
      evalHm =
        configs:
        (hmLib.evalModules {
          specialArgs.lib = hmLib;
          modules = [
            hmStubs
            ../../modules/home-manager.nix
            {
              _module.args.pkgs = pkgs;
              cachix.package = pkg;
            }
          ]
          ++ configs;
        }).config;
      base = {
        cachix = {
          cacheUrl = "file:///srv/nix-cache";
          pushPackages = [ fixtures.app ];
        };
      };
      hm = evalHm [ base ];
      order = map (e: e.name) (hmLib.hm.dag.topoSort hm.home.activation).result;
      pos = name: lib.lists.findFirstIndex (n: n == name) null order;
      entry = hm.home.activation.cachixSelect;
      noSystemd = evalHm [
        base
        { systemd.user.enable = false; }
      ];
      hmOptions =
        (hmLib.evalModules {
          specialArgs.lib = hmLib;
          modules = [
            hmStubs
            ../../modules/home-manager.nix
            { _module.args.pkgs = pkgs; }
          ];
        }).options;
    in
    [
      (check "home-manager: a valid configuration passes the assertions" (failed hm == [ ]))
      (check "home-manager: home.activation.cachixSelect runs after writeBoundary and reloadSystemd" (
        pos "cachixSelect" > pos "writeBoundary" && pos "cachixSelect" > pos "reloadSystemd"
      ))
      (check "home-manager: the snippet is modules/lib.nix's, with the user unit and the state dir" (
        entry.data == pure.homeManagerActivation {
          inherit exe;
          manifest = "${hm.cachix.manifest}";
          stateDir = "/home/alice/.local/state/cachix-select";
          systemdUnit = "cachix-select.service";
          systemctlDir = "/fake/systemd/bin";
        }
      ))
      (check "home-manager: the snippet goes through run and honours DRY_RUN and VERBOSE" (
        has "run env" entry.data && has "[[ -v DRY_RUN ]]" entry.data && has "\${VERBOSE+--verbose}" entry.data
      ))
      (check "home-manager: a user unit and timer flush the queue (ExecStart quoted for systemd)" (
        hm.systemd.user.services.cachix-select.Service.ExecStart
        == "\"${exe}\" \"queue\" \"flush\" \"--fail-fast\" \"--state-dir\" \"/home/alice/.local/state/cachix-select\""
        && hm.systemd.user.timers.cachix-select.Install.WantedBy == [ "timers.target" ]
      ))
      (check "home-manager: configFile goes to activation and to the unit as --config" (
        let
          c = evalHm [
            base
            { cachix.configFile = "/home/alice/secrets/cachix.dhall"; }
          ];
        in
        failed c == [ ]
        && has "--config /home/alice/secrets/cachix.dhall" c.home.activation.cachixSelect.data
        && has "\"--config\" \"/home/alice/secrets/cachix.dhall\"" c.systemd.user.services.cachix-select.Service.ExecStart
      ))
      (check "home-manager: pushGeneration pushes $newGenPath, pinned as <system>-generation without a prefix" (
        let
          c = evalHm [
            {
              cachix = {
                cacheName = "mycache";
                pushGeneration = true;
                pin.enable = true;
              };
            }
          ];
        in
        failed c == [ ]
        && has "--root-pin ${builtins.currentSystem}-generation --root \"$newGenPath\"" c.home.activation.cachixSelect.data
      ))
      (check "home-manager: a Cachix cache needs no token option (the user unit sees the user's cachix.dhall)" (
        failed (evalHm [ { cachix = { cacheName = "mycache"; pushPackages = [ fixtures.app ]; }; } ]) == [ ]
      ))
      (check "home-manager: s3.credentialsFile goes by path to activation and to the user unit" (
        let
          c = evalHm [
            {
              cachix = {
                cacheUrl = "s3://cache?endpoint=minio.example.com";
                s3.credentialsFile = "/home/alice/.config/aws/credentials";
                pushPackages = [ fixtures.app ];
              };
            }
          ];
        in
        failed c == [ ]
        && has "--s3-credentials-file /home/alice/.config/aws/credentials" c.home.activation.cachixSelect.data
        && has "\"--s3-credentials-file\" \"/home/alice/.config/aws/credentials\"" c.systemd.user.services.cachix-select.Service.ExecStart
      ))
      (check "home-manager: s3.credentialsFile without an s3:// cache fails an assertion" (
        lib.any (m: has "cachix.s3.credentialsFile is the AWS credentials file of an s3:// cache" m) (failed (evalHm [
          base
          { cachix.s3.credentialsFile = "/home/alice/.config/aws/credentials"; }
        ]))
      ))
      (check "home-manager: the options are the NixOS module's, from modules/common.nix, plus stateDir" (
        let
          hmDecl = declaredIn hmOptions;
        in
        hmDecl."cachix.stateDir" == [ "home-manager.nix" ]
        && removeAttrs hmDecl [ "cachix.stateDir" ] == declaredIn nixosOptions
      ))
      (check "home-manager: the manifest says home-manager" ((manifestOf hm).origin == "home-manager"))
      (check "home-manager: without user systemd, no unit and no --systemd-unit (detached push)" (
        !(noSystemd.systemd.user.services ? cachix-select)
        && !(has "--systemd-unit" noSystemd.home.activation.cachixSelect.data)
      ))
      (check "home-manager: nothing happens with an empty pushPackages" (!((evalHm [ ]).home.activation ? cachixSelect)))
      (check "home-manager: a Nix path as authTokenFile is a type error" (
        throws (evalHm [ base { cachix.authTokenFile = ./modules-eval.nix; } ]).cachix.authTokenFile
      ))
      (check "home-manager: host with cacheUrl fails an assertion" (
        lib.any (m: has "cachix.host is the Cachix API host" m) (failed (evalHm [
          base
          { cachix.host = "https://cachix.example.com"; }
        ]))
      ))
      (check "home-manager: every cachix option has type, default, example and description (missing: ${toString (optionDocs hmOptions)})" (
        optionDocs hmOptions == [ ]
      ))
    ];
in
{
  # tests/nix/run forces this and expects the error that says what to do.
  packageError = builtins.seq nixosOptions.cachix.package.value "no error";

  report = lib.concatStringsSep "\n" (
    nixosChecks ++ docChecks ++ (if homeManager == null then [ ] else hmChecks)
  ) + "\n";
}

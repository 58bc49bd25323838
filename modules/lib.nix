# The pure Nix shared by the home-manager, NixOS and shellHook modules:
# the manifest (design.md §3) and the shell snippets the hooks run.
#
# Builtins only, no nixpkgs `lib`: the tests evaluate this file with plain
# `nix-instantiate`, and the modules stay thin (options, assertions, wiring).
# All decisions at run time (what is new, queueing, systemd or not, retries)
# belong to the binary; the snippets only call `cachix-select activate`.
let
  inherit (builtins)
    all
    any
    attrNames
    baseNameOf
    concatStringsSep
    filter
    foldl'
    hasContext
    head
    isAttrs
    isInt
    isString
    length
    listToAttrs
    match
    parseDrvName
    removeAttrs
    replaceStrings
    stringLength
    substring
    toJSON
    unsafeDiscardStringContext
    ;

  # hasPrefix is nixpkgs' lib.hasPrefix, which this file cannot import.
  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;

  # optional keeps argument lists readable.
  optional = cond: xs: if cond then xs else [ ];

  # uniqueBy keeps the first of the elements that share a key.
  uniqueBy =
    key: list:
    foldl' (acc: x: if any (y: key y == key x) acc then acc else acc ++ [ x ]) [ ] list;
in
rec {
  # The store directory of the evaluating Nix, for rejecting secrets in it.
  storeDir = builtins.storeDir;

  # escapeShellArg quotes one word for POSIX shells, whatever it contains
  # (quotes, spaces, `$`, newlines); plain words stay readable.
  escapeShellArg =
    arg:
    let
      s = toString arg;
    in
    if match "[[:alnum:],._+:@%/-]+" s != null then s else "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  # escapeShellArgs quotes a command line.
  escapeShellArgs = args: concatStringsSep " " (map escapeShellArg args);

  # inStore tells whether a path string lies in the Nix store (world-readable).
  inStore = s: s == storeDir || hasPrefix (storeDir + "/") s;

  # isRuntimePath accepts what a secret option may hold: an absolute path,
  # given as a string, outside the store and not produced from a Nix path
  # (which would have copied the secret into the store).
  isRuntimePath = x: isString x && hasPrefix "/" x && !(inStore x) && !(hasContext x);

  # runtimePathProblem explains why a secret path is refused, or is null.
  runtimePathProblem =
    option: x:
    if x == null || isRuntimePath x then
      null
    else if builtins.isPath x then
      "${option} is a Nix path (${toString x}); a path literal copies the secret into the world-readable Nix store. Give the path as a string instead: \"/run/secrets/cachix-token\"."
    else if !(isString x) then
      "${option} must be a string holding an absolute path, not a ${builtins.typeOf x}."
    else if inStore x || hasContext x then
      "${option} (${x}) is inside the Nix store, which every user can read. Keep the secret outside the store (sops-nix, agenix, or a file under /run/secrets or your home) and give its path as a string."
    else
      "${option} (${x}) must be an absolute path.";

  # nameOf is the manifest name of a package: its pname, plus the output
  # when that is not the default one (openssl-dev); a bare store path
  # gives the name part of the path without the version.
  nameOf =
    pkg:
    unsafeDiscardStringContext (
      if isAttrs pkg then
        let
          base = pkg.pname or (parseDrvName (unsafeDiscardStringContext (pkg.name or "package"))).name;
          outputs = pkg.outputs or [ "out" ];
          out = pkg.outputName or (head outputs);
        in
        if out == head outputs then base else "${base}-${out}"
      else
        (parseDrvName (unsafeDiscardStringContext (substring 33 (-1) (baseNameOf (toString pkg))))).name
    );

  # pinName is the default pin name: <prefix>-<system>-<name>, like the
  # cachix-push flake app; empty parts are left out.
  pinName =
    {
      prefix ? null,
      system ? null,
      name,
    }:
    concatStringsSep "-" (filter (s: s != null && s != "") [ prefix system name ]);

  # keepProblem checks a pin keep policy before the binary sees it.
  keepProblem =
    option: keep:
    if keep == null || keep == "forever" then
      null
    else if
      isAttrs keep
      && length (attrNames keep) == 1
      && any (k: keep ? ${k}) [ "revisions" "days" ]
      && all (v: isInt v && v >= 1) (map (k: keep.${k}) (attrNames keep))
    then
      null
    else
      "${option} must be null (Cachix's default), \"forever\", { revisions = N; } or { days = N; } with N >= 1.";

  # entries turns the selected packages into manifest path entries,
  # without duplicates (list options merge across modules, so the same
  # package often comes twice).
  entries =
    {
      packages,
      pin ? { },
    }:
    let
      pinOn = pin.enable or false;
      names = pin.names or { };
      raw = map (pkg: {
        name = nameOf pkg;
        storePath = toString pkg; # keeps the string context: the package is built first
        system = if isAttrs pkg then pkg.system or null else null;
      }) packages;
      pinFor =
        e:
        {
          name =
            names.${e.name} or (pinName {
              prefix = pin.prefix or null;
              inherit (e) system name;
            });
        }
        // (if (pin.keep or null) == null then { } else { keep = pin.keep; });
    in
    map (
      e: { inherit (e) name storePath; } // (if pinOn then { pin = pinFor e; } else { })
    ) (uniqueBy (e: e.storePath) raw);

  # manifest is the manifest as a Nix value (design.md §3). Store paths
  # keep their string context, so a file written from it depends on them.
  manifest =
    {
      cacheName ? null,
      cacheUrl ? null,
      host ? null,
      authTokenFile ? null,
      signingKeyFile ? null,
      packages ? [ ],
      pin ? { },
      push ? { },
      origin ? "manual",
    }:
    {
      version = 1;
      cache = {
        name = cacheName;
        inherit host authTokenFile signingKeyFile;
        url = cacheUrl;
      };
      paths = entries { inherit packages pin; };
      push =
        listToAttrs (
          map (n: {
            name = n;
            value = push.${n};
          }) (filter (n: (push.${n} or null) != null) [ "jobs" "compression" "compressionLevel" ])
        )
        // {
          omitDeriver = push.omitDeriver or false;
        };
      inherit origin;
    };

  # manifestJSON is the text of the manifest file.
  manifestJSON = args: toJSON (manifest args);

  # moduleManifestArgs turns a module's `cachix` options into the
  # arguments of `manifest` (the same for home-manager and NixOS).
  moduleManifestArgs = cfg: origin: {
    inherit (cfg)
      cacheName
      cacheUrl
      host
      authTokenFile
      signingKeyFile
      pin
      push
      ;
    packages = cfg.pushPackages;
    inherit origin;
  };

  # problems lists what is wrong with the arguments of `manifest`, in
  # words that name the option (prefix "cachix." in modules, "" for the
  # shellHook). The modules turn them into assertions; lib.shellHook and
  # lib.mkManifest throw them.
  problems =
    {
      prefix ? "",
      cacheName ? null,
      cacheUrl ? null,
      host ? null,
      authTokenFile ? null,
      signingKeyFile ? null,
      packages ? [ ],
      pin ? { },
      ...
    }:
    let
      pinned = entries { inherit packages pin; };
      pinNames = map (e: e.pin.name) (filter (e: e ? pin) pinned);
      dupes = uniqueBy (n: n) (filter (n: length (filter (m: m == n) pinNames) > 1) pinNames);
      holders = n: map (e: e.storePath) (filter (e: (e.pin.name or null) == n) pinned);
    in
    filter (p: p != null) (
      [
        (
          if cacheName != null && cacheUrl != null then
            "Set only one of ${prefix}cacheName (a Cachix cache) and ${prefix}cacheUrl (a plain binary cache), not both."
          else if cacheName == null && cacheUrl == null then
            "Set ${prefix}cacheName to your Cachix cache's name (\"mycache\" for mycache.cachix.org), or ${prefix}cacheUrl to a plain binary cache (\"file:///srv/nix-cache\")."
          else
            null
        )
        (
          if host != null && cacheUrl != null then
            "${prefix}host is the Cachix API host and applies only with ${prefix}cacheName; remove it when using ${prefix}cacheUrl."
          else
            null
        )
        (runtimePathProblem "${prefix}authTokenFile" authTokenFile)
        (runtimePathProblem "${prefix}signingKeyFile" signingKeyFile)
        (keepProblem "${prefix}pin.keep" (pin.keep or null))
      ]
      ++ map (
        n:
        "Pin name \"${n}\" would be used by ${toString (length (holders n))} different store paths (${concatStringsSep ", " (holders n)}); pins need distinct names: push only one of them, or turn pinning off (${prefix}pin.names renames by package name, so it cannot separate two packages of the same name)."
      ) dupes
    );

  # activateArgs is the `cachix-select activate` command line shared by all
  # hooks, without the manifest (flags must come before it).
  activateArgs =
    {
      exe,
      mode ? "background",
      strict ? false,
      timeout ? "10m",
      stateDir ? null,
      systemdUnit ? null,
      dryRun ? false,
    }:
    [
      exe
      "activate"
    ]
    ++ (if dryRun then [ "--dry-run" ] else [ "--mode" mode ])
    ++ optional (!dryRun && mode == "foreground") [
      "--timeout"
      timeout
    ]
    ++ optional (!dryRun && mode == "background" && systemdUnit != null) [
      "--systemd-unit"
      systemdUnit
    ]
    ++ optional (stateDir != null) [
      "--state-dir"
      stateDir
    ]
    ++ optional strict [ "--strict" ];

  # guarded runs a command so that its failure never stops the caller
  # (home-manager runs activation under `set -eu -o pipefail`; NixOS marks
  # the switch failed on any failing command), unless strict is asked for.
  guarded =
    strict: cmd: what:
    if strict then
      cmd
    else
      "if ! ${cmd}; then echo \"cachix-select: ${what}\" >&2; fi";

  # queueFailed is the warning when the binary itself could not run.
  queueFailed = "could not start the push; continuing (retry later with: cachix-select queue flush)";

  # homeManagerActivation is the text of home.activation.cachixSelect. It
  # runs after writeBoundary in home-manager's activation script, which
  # provides `run` and sets DRY_RUN / VERBOSE. A dry run asks the binary
  # for a report (it pushes and queues nothing), because `run` would only
  # echo the command.
  homeManagerActivation =
    {
      exe,
      manifest,
      mode ? "background",
      strict ? false,
      timeout ? "10m",
      stateDir ? null,
      systemdUnit ? null,
      systemctlDir ? null,
    }:
    let
      command =
        dryRun:
        escapeShellArgs (activateArgs {
          inherit exe mode strict timeout stateDir systemdUnit dryRun;
        })
        + " \${VERBOSE+--verbose} "
        + escapeShellArg manifest;
      # `systemctl --user` needs XDG_RUNTIME_DIR, which is unset when
      # activation runs from the home-manager NixOS module.
      env =
        "env \"XDG_RUNTIME_DIR=\${XDG_RUNTIME_DIR:-/run/user/$UID}\""
        + (if systemctlDir == null then "" else " PATH=${escapeShellArg systemctlDir}:\"$PATH\"");
    in
    ''
      # cachix-select: push cachix.pushPackages (what is pending: cachix-select queue list)
      if [[ -v DRY_RUN ]]; then
        ${guarded strict (command true) "the dry run failed; continuing"}
      else
        ${guarded strict "run ${env} ${command false}" queueFailed}
      fi
    '';

  # nixosActivation is the text of system.activationScripts.cachixSelect.
  # NixOS runs activation scripts at every boot (NIXOS_ACTION unset, no
  # network yet) and on dry-activate: only switch and test push, and
  # dry-activate reports. `path` holds directories for nix and systemctl,
  # which the activation script's PATH lacks.
  nixosActivation =
    {
      exe,
      manifest,
      mode ? "background",
      strict ? false,
      timeout ? "10m",
      stateDir ? "/var/lib/cachix-select",
      systemdUnit ? "cachix-select.service",
      path ? [ ],
    }:
    let
      command =
        dryRun:
        (if path == [ ] then "" else "PATH=${escapeShellArg (concatStringsSep ":" path)}:\"$PATH\" ")
        + escapeShellArgs (
          activateArgs {
            inherit exe mode strict timeout stateDir systemdUnit dryRun;
          }
          ++ [ manifest ]
        );
    in
    ''
      # cachix-select: push cachix.pushPackages on switch and test only (never at boot)
      case "''${NIXOS_ACTION-}" in
        switch | test)
          ${guarded strict (command false) queueFailed}
          ;;
        dry-activate)
          ${guarded strict (command true) "the dry run failed; continuing"}
          ;;
      esac
    '';

  # shellHook is the text a mkShell runs on entry: one `activate` call that
  # returns at once (the push runs detached, one at a time per user, output
  # in the state directory's push.log) and prints one line, or nothing
  # when there is nothing new.
  shellHook =
    {
      exe,
      manifest,
      mode ? "background",
      strict ? false,
      timeout ? "10m",
      stateDir ? null,
    }:
    ''
      # cachix-select: push the selected packages in the background
      ${guarded strict (escapeShellArgs (
        activateArgs {
          inherit exe mode strict timeout stateDir;
        }
        ++ [ manifest ]
      )) queueFailed}
    '';

  # flushArgs is the command of the units that retry the queue; with
  # systemd credentials, the token and key come from $CREDENTIALS_DIRECTORY
  # (%d), never from the unit's environment or the store.
  flushArgs =
    {
      exe,
      stateDir ? null,
      authTokenCredential ? null,
      signingKeyCredential ? null,
    }:
    [
      exe
      "queue"
      "flush"
    ]
    ++ optional (stateDir != null) [
      "--state-dir"
      stateDir
    ]
    ++ optional (authTokenCredential != null) [
      "--auth-token-file"
      "%d/${authTokenCredential}"
    ]
    ++ optional (signingKeyCredential != null) [
      "--signing-key-file"
      "%d/${signingKeyCredential}"
    ];

  # nixosService is systemd.services.cachix-select of the NixOS module, in
  # NixOS's service shape (nixpkgs' systemd-lib.nix turns it into a unit
  # file). A oneshot that flushes the queue after the network is up, with
  # the secrets passed as systemd credentials (readable only by the unit,
  # never in its environment, its command line or the store), hardened: it
  # reads the store through nix-daemon and talks HTTPS.
  nixosService =
    {
      exe,
      stateDir,
      unit,
      nixPackage,
      authTokenFile ? null,
      signingKeyFile ? null,
    }:
    {
      description = "Push queued Nix store paths to a binary cache (cachix-select)";
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.socket"
      ];
      path = [ nixPackage ];
      # Started by activation and the timer; a switch must not restart a push.
      restartIfChanged = false;
      environment = {
        NIX_REMOTE = "daemon";
        HOME = stateDir;
        XDG_CACHE_HOME = "/var/cache/${unit}";
      };
      serviceConfig = {
        Type = "oneshot";
        ExecStart = escapeShellArgs (flushArgs {
          inherit exe stateDir;
          authTokenCredential = if authTokenFile != null then "auth-token" else null;
          signingKeyCredential = if signingKeyFile != null then "signing-key" else null;
        });
        LoadCredential =
          optional (authTokenFile != null) [ "auth-token:${authTokenFile}" ]
          ++ optional (signingKeyFile != null) [ "signing-key:${signingKeyFile}" ];
        StateDirectory = unit;
        StateDirectoryMode = "0700";
        CacheDirectory = unit;
        CacheDirectoryMode = "0700";
        UMask = "0077";
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

  # nixosTimer is systemd.timers.cachix-select: retries what is queued.
  nixosTimer =
    { retryInterval }:
    {
      description = "Retry the queued pushes of cachix-select";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "10min";
        OnUnitInactiveSec = retryInterval;
        RandomizedDelaySec = "2min";
      };
    };

  # homeManagerService is systemd.user.services.cachix-select of the
  # home-manager module, in home-manager's INI shape (Unit/Service/Install).
  homeManagerService =
    {
      exe,
      stateDir,
      nixPackage ? null,
    }:
    {
      Unit.Description = "Push queued Nix store paths to a binary cache (cachix-select)";
      Service = {
        Type = "oneshot";
        ExecStart = escapeShellArgs (flushArgs { inherit exe stateDir; });
        Environment = optional (nixPackage != null) [ "PATH=${nixPackage}/bin" ];
      };
    };

  # homeManagerTimer is systemd.user.timers.cachix-select.
  homeManagerTimer =
    { retryInterval }:
    {
      Unit.Description = "Retry the queued pushes of cachix-select";
      Timer = {
        OnStartupSec = "10min";
        OnUnitInactiveSec = retryInterval;
        RandomizedDelaySec = "2min";
      };
      Install.WantedBy = [ "timers.target" ];
    };

  # checkPhase validates a rendered manifest with the binary while it is
  # built, so a bad configuration fails the build and not the switch.
  checkPhase = exe: ''
    NIX_STORE_DIR="''${NIX_STORE:-${storeDir}}" ${escapeShellArg exe} manifest check -q "$out"
  '';

  # manifestFileName ends in .json: `cachix-select push` recognises
  # manifests by that suffix.
  manifestFileName = origin: "cachix-select-${origin}.json";

  # writeManifest renders and checks the manifest with a writeTextFile
  # (the only nixpkgs function the modules need), or throws the problems.
  writeManifest =
    {
      writeTextFile,
      package,
      prefix ? "",
      ...
    }@args:
    let
      margs = removeAttrs args [ "writeTextFile" "package" "prefix" ];
      errs = problems (margs // { inherit prefix; });
    in
    if errs != [ ] then
      throw ("cachix-select: " + concatStringsSep "\n" errs)
    else
      writeManifestUnchecked {
        inherit writeTextFile package;
        args = margs;
      };

  # writeManifestUnchecked writes without the Nix-side problems (the
  # modules report those as assertions instead).
  writeManifestUnchecked =
    {
      writeTextFile,
      package,
      args,
    }:
    writeTextFile {
      name = manifestFileName (args.origin or "manual");
      text = manifestJSON args;
      checkPhase = checkPhase "${package}/bin/cachix-select";
    };
}

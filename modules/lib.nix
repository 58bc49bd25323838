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
    isList
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
    tail
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

  # escapeSystemdExecArg quotes one argument of an ExecStart= command line.
  # It re-implements nixpkgs' utils.escapeSystemdExecArg (nixos/lib/utils.nix),
  # which this file cannot import: a JSON string is a double-quoted word
  # whose escapes (\" \\ \n \t \uXXXX) systemd's unquoting reads back
  # (systemd.syntax(7), "Quoting"), and systemd's own expansions are
  # disarmed by doubling: `%%` for a specifier, `$$` for a variable
  # (systemd.service(5), "Command lines"). A word made by credentialPath
  # passes its `%d` on to systemd on purpose.
  escapeSystemdExecArg =
    arg:
    if isAttrs arg && arg ? systemdSpecifier then
      toJSON arg.systemdSpecifier
    else
      replaceStrings [ "%" "$" ] [ "%%" "$$" ] (toJSON (toString arg));

  # escapeSystemdExecPath quotes the executable, the first word: systemd
  # expands specifiers in it but executes it without variable expansion
  # (systemd-analyze verify reports `$$` in it literally), so unlike
  # nixpkgs' function (harmless there: a store path never holds a `$`) a
  # `$` stays single. The path must be absolute (systemd reads a leading
  # `-`, `@`, `:`, `+` or `!` as a flag, not as part of the name) and free
  # of quotes, backslashes and control characters, which systemd refuses
  # in an executable's name ("contains special characters").
  escapeSystemdExecPath =
    exe:
    let
      s = toString exe;
    in
    if !(hasPrefix "/" s) then
      throw "cachix-select: the executable of a systemd unit must be an absolute path, not ${toJSON s}"
    else if match ".*[\"'\\[:cntrl:]].*" s != null then
      throw "cachix-select: systemd refuses an executable whose path holds quotes, backslashes or control characters: ${toJSON s}"
    else
      replaceStrings [ "%" ] [ "%%" ] (toJSON s);

  # escapeSystemdExecArgs quotes a whole ExecStart= command line, like
  # nixpkgs' utils.escapeSystemdExecArgs.
  escapeSystemdExecArgs =
    args: concatStringsSep " " ([ (escapeSystemdExecPath (head args)) ] ++ map escapeSystemdExecArg (tail args));

  # credentialPath is the ExecStart= word for a file passed by
  # LoadCredential=: systemd replaces %d with the unit's credentials
  # directory. The name is one of this file's constants, never user input.
  credentialPath = name: { systemdSpecifier = "%d/${name}"; };

  # escapeSystemdSpecifiers protects a value that systemd reads without
  # unquoting but with specifier expansion, such as the source path of
  # LoadCredential= (split at the first `:`, the rest taken verbatim).
  escapeSystemdSpecifiers = s: replaceStrings [ "%" ] [ "%%" ] (toString s);

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
  # lib.mkManifest throw them. generationPin is the pin of the pushed
  # generation (see generationPin), which must not clash with the others.
  problems =
    {
      prefix ? "",
      cacheName ? null,
      cacheUrl ? null,
      host ? null,
      authTokenFile ? null,
      signingKeyFile ? null,
      configFile ? null,
      packages ? [ ],
      pin ? { },
      generationPin ? null,
      ...
    }:
    let
      pinned =
        entries { inherit packages pin; }
        ++ optional (generationPin != null) [
          {
            storePath = "the generation being activated";
            pin = generationPin;
          }
        ];
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
        (runtimePathProblem "${prefix}configFile" configFile)
        (keepProblem "${prefix}pin.keep" (pin.keep or null))
      ]
      ++ map (
        n:
        "Pin name \"${n}\" would be used by ${toString (length (holders n))} different store paths (${concatStringsSep ", " (holders n)}); pins need distinct names: push only one of them, or turn pinning off (${prefix}pin.names renames by package name, so it cannot separate two packages of the same name)."
      ) dupes
    );

  # nixosTokenProblem is the NixOS module's extra check: in background
  # mode a Cachix push runs in the hardened system unit (no home
  # directory, no environment of yours), which finds a token only through
  # authTokenFile or configFile. Without either the push would stay queued
  # for ever, so the build fails instead.
  nixosTokenProblem =
    {
      prefix ? "cachix.",
      cacheName ? null,
      mode ? "background",
      authTokenFile ? null,
      configFile ? null,
    }:
    if cacheName != null && mode == "background" && authTokenFile == null && configFile == null then
      "${prefix}cacheName is set and ${prefix}mode is \"background\", so cachix-select.service pushes to Cachix, and that unit cannot find a token by itself (it runs hardened, without your home directory or environment). Set ${prefix}authTokenFile to a file holding the token (\"/run/secrets/cachix-token\", from sops-nix or agenix), or ${prefix}configFile to a cachix.dhall with an authToken (\"/root/.config/cachix/cachix.dhall\", which `cachix authtoken` writes). A public cache needs one too: anyone may read it, only a token may write to it."
    else
      null;

  # generationPin is the pin of the generation that `pushGeneration`
  # pushes: <prefix>-<system>-generation, or pin.names.generation; null
  # when pins are off.
  generationPin =
    {
      pin ? { },
      system ? null,
    }:
    if !(pin.enable or false) then
      null
    else
      {
        name =
          (pin.names or { }).generation or (pinName {
            prefix = pin.prefix or null;
            inherit system;
            name = "generation";
          });
      }
      // (if (pin.keep or null) == null then { } else { inherit (pin) keep; });

  # generationArgs are the flags that name and pin the generation passed
  # with --root (the path itself is a shell variable, see rootWord).
  generationArgs =
    generationPin:
    if generationPin == null then
      [ ]
    else
      [
        "--root-pin"
        generationPin.name
      ]
      ++ (
        let
          keep = generationPin.keep or null;
        in
        if keep == null then
          [ ]
        else if keep == "forever" then
          [ "--root-keep-forever" ]
        else if keep ? revisions then
          [
            "--root-keep-revisions"
            (toString keep.revisions)
          ]
        else
          [
            "--root-keep-days"
            (toString keep.days)
          ]
      );

  # rootWord passes the generation being activated to the binary: the
  # shell variable that home-manager's activation script
  # (modules/lib-bash/activation-init.sh: newGenPath, the generation's
  # store path) or NixOS's (activation-script.nix: systemConfig, the
  # system's store path) sets. It cannot be in the manifest, which is
  # part of that generation's closure.
  rootWord = variable: if variable == null then "" else " --root \"\$${variable}\"";

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
      userUnit ? false,
      restartList ? null,
      configFile ? null,
      generationPin ? null,
      dryRun ? false,
    }:
    let
      background = !dryRun && mode == "background";
    in
    [
      exe
      "activate"
    ]
    ++ (if dryRun then [ "--dry-run" ] else [ "--mode" mode ])
    ++ optional (!dryRun && mode == "foreground") [
      "--timeout"
      timeout
    ]
    ++ optional (background && systemdUnit != null) [
      "--systemd-unit"
      systemdUnit
    ]
    ++ optional (background && systemdUnit != null && userUnit) [ "--user-unit" ]
    ++ optional (background && systemdUnit != null && restartList != null) [
      "--restart-list"
      restartList
    ]
    ++ optional (stateDir != null) [
      "--state-dir"
      stateDir
    ]
    ++ optional (configFile != null) [
      "--config"
      configFile
    ]
    ++ generationArgs generationPin
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
  # echo the command. With pushGeneration, the generation itself
  # ($newGenPath) is pushed too.
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
      configFile ? null,
      pushGeneration ? false,
      generationPin ? null,
    }:
    let
      command =
        dryRun:
        escapeShellArgs (activateArgs {
          inherit
            exe
            mode
            strict
            timeout
            stateDir
            systemdUnit
            configFile
            dryRun
            ;
          # A user unit, also when root runs home-manager: the system unit
          # of that name belongs to the NixOS module.
          userUnit = true;
          generationPin = if pushGeneration then generationPin else null;
        })
        + rootWord (if pushGeneration then "newGenPath" else null)
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
  # dry-activate reports. `path` holds directories for nix, which the
  # activation script's PATH lacks (foreground and dry runs use it).
  #
  # In background mode the binary queues the push and appends the unit to
  # restartList, /run/nixos/activation-restart-list, rather than starting
  # it: switch-to-configuration runs activation before its daemon-reload,
  # so a `systemctl start` here would find no unit on the first switch and
  # the old definition after a change. What this relies on, as read in
  # nixpkgs' nixos/modules/system/activation/switch-to-configuration.pl and
  # pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs: after
  # running activation (for switch and test alike; boot never activates)
  # it reads that file, one unit per line, duplicates ignored, and deletes
  # it; a listed unit that was not active when the switch began is
  # started, and one that was (running or failed) goes through the rules
  # of a changed unit, which restart it since the unit keeps
  # restartIfChanged; those jobs run after daemon-reload and
  # switch-to-configuration waits for them and then reports units that
  # failed (hence nixosService's Type and SuccessExitStatus). The binary
  # lists the unit only when no flush is running: a running flush takes
  # what was queued before it exits, so it is never restarted for it.
  # (activation-reload-list is not used: a reload needs ExecReload=, and a
  # flush has nothing to reload.)
  nixosActivation =
    {
      exe,
      manifest,
      mode ? "background",
      strict ? false,
      timeout ? "10m",
      stateDir ? "/var/lib/cachix-select",
      systemdUnit ? "cachix-select.service",
      restartList ? "/run/nixos/activation-restart-list",
      configFile ? null,
      pushGeneration ? false,
      generationPin ? null,
      path ? [ ],
    }:
    let
      command =
        dryRun:
        (if path == [ ] then "" else "PATH=${escapeShellArg (concatStringsSep ":" path)}:\"$PATH\" ")
        + escapeShellArgs (activateArgs {
          inherit
            exe
            mode
            strict
            timeout
            stateDir
            systemdUnit
            restartList
            configFile
            dryRun
            ;
          generationPin = if pushGeneration then generationPin else null;
        })
        + rootWord (if pushGeneration then "systemConfig" else null)
        + " "
        + escapeShellArg manifest;
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
      configFile ? null,
    }:
    ''
      # cachix-select: push the selected packages in the background
      ${guarded strict (escapeShellArgs (
        activateArgs {
          inherit
            exe
            mode
            strict
            timeout
            stateDir
            configFile
            ;
        }
        ++ [ manifest ]
      )) queueFailed}
    '';

  # Credential names of the NixOS unit: files under $CREDENTIALS_DIRECTORY.
  credentialNames = {
    authToken = "auth-token";
    signingKey = "signing-key";
    config = "cachix-config";
  };

  # flushArgs is the command of the units that retry the queue. With
  # systemd credentials (credentials = true), the token, key and
  # cachix.dhall come from the unit's credentials directory (%d), never
  # from its environment or the store; otherwise the config file is given
  # by its path. Render it with escapeSystemdExecArgs. --fail-fast: a
  # host that cannot be reached at all (refused, unknown, no route) ends
  # the run at once instead of holding the unit for the retry budget; the
  # entry stays queued for the timer or the next activation.
  flushArgs =
    {
      exe,
      stateDir ? null,
      credentials ? false,
      authTokenFile ? null,
      signingKeyFile ? null,
      configFile ? null,
    }:
    let
      pass =
        flag: file: name:
        optional (file != null) [
          flag
          (if credentials then credentialPath name else file)
        ];
    in
    [
      exe
      "queue"
      "flush"
      "--fail-fast"
    ]
    ++ optional (stateDir != null) [
      "--state-dir"
      stateDir
    ]
    ++ pass "--auth-token-file" authTokenFile credentialNames.authToken
    ++ pass "--signing-key-file" signingKeyFile credentialNames.signingKey
    ++ pass "--config" configFile credentialNames.config;

  # nixosService is systemd.services.cachix-select of the NixOS module, in
  # NixOS's service shape (nixpkgs' systemd-lib.nix turns it into a unit
  # file). It flushes the queue, with the secrets passed as systemd
  # credentials (readable only by the unit, never in its environment, its
  # command line or the store), hardened: it reads the store through
  # nix-daemon and talks HTTPS.
  #
  # switch-to-configuration starts it (see nixosActivation) and waits for
  # the start job, then counts failed units as a failed switch. So:
  # Type=exec, whose start job ends once the binary runs, not once the
  # push is done; exit codes 1 (pushes failed and stay queued) and 2 (bad
  # input, e.g. a missing secret) and 143 (stopped by SIGTERM) are not
  # unit failures, since a push that cannot happen now must never fail a
  # switch (the journal and `cachix-select queue list` say why);
  # After=network-online.target without Wants=, which orders it at boot
  # but never makes a switch start (and wait for) network-online.target;
  # a bounded stop, so that a restart of a running push costs the switch
  # seconds (what it pushed stays pushed, the rest stays queued).
  nixosService =
    {
      exe,
      stateDir,
      unit,
      nixPackage,
      authTokenFile ? null,
      signingKeyFile ? null,
      configFile ? null,
    }:
    {
      description = "Push queued Nix store paths to a binary cache (cachix-select)";
      after = [
        "network-online.target"
        "nix-daemon.socket"
      ];
      path = [ nixPackage ];
      environment = {
        NIX_REMOTE = "daemon";
        HOME = stateDir;
        XDG_CACHE_HOME = "/var/cache/${unit}";
      };
      serviceConfig = {
        Type = "exec";
        SuccessExitStatus = "1 2 143";
        TimeoutStopSec = "20s";
        ExecStart = escapeSystemdExecArgs (flushArgs {
          inherit
            exe
            stateDir
            authTokenFile
            signingKeyFile
            configFile
            ;
          credentials = true;
        });
        LoadCredential =
          let
            load = name: file: optional (file != null) [ "${name}:${escapeSystemdSpecifiers file}" ];
          in
          load credentialNames.authToken authTokenFile
          ++ load credentialNames.signingKey signingKeyFile
          ++ load credentialNames.config configFile;
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
  # activation starts it with `systemctl --user start --no-block` after
  # home-manager reloaded the user units, so a oneshot never holds it up.
  homeManagerService =
    {
      exe,
      stateDir,
      nixPackage ? null,
      configFile ? null,
    }:
    {
      Unit.Description = "Push queued Nix store paths to a binary cache (cachix-select)";
      Service = {
        Type = "oneshot";
        ExecStart = escapeSystemdExecArgs (flushArgs { inherit exe stateDir configFile; });
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

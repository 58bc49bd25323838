# The pure Nix shared by the home-manager, NixOS and shellHook modules:
# the manifest (the README's "The manifest (version 1)"), the secrets, the
# shell snippets the hooks run and the systemd units that retry the queue.
#
# Builtins only, no nixpkgs `lib`: the tests evaluate this file with plain
# `nix-instantiate`, and the modules stay thin (options, assertions, wiring).
# Where a helper re-implements a nixpkgs `lib` function, its comment names
# it. All decisions at run time (what is new, queueing, systemd or not,
# retries) belong to the binary; the snippets only call `cachix-select
# activate`.
#
# One vocabulary throughout: every function here takes its arguments as
# the `cachix.*` options name them (cacheName, authTokenFile,
# s3 = { credentialsFile = …; }, …), so a module passes what it has, and
# the shellHook and the tests pass the same names.
let
  inherit (builtins)
    all
    any
    attrNames
    baseNameOf
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    hasContext
    head
    intersectAttrs
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
    tail
    toJSON
    unsafeDiscardOutputDependency
    unsafeDiscardStringContext
    ;

  # hasPrefix is nixpkgs' lib.hasPrefix, which this file cannot import.
  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;

  # optional is nixpkgs' lib.optionals: it keeps argument lists readable.
  optional = cond: xs: if cond then xs else [ ];

  # uniqueBy keeps the first of the elements that share a key (nixpkgs'
  # lib.unique, by a key).
  uniqueBy =
    key: list:
    foldl' (acc: x: if any (y: key y == key x) acc then acc else acc ++ [ x ]) [ ] list;

  # genAttrs is nixpkgs' lib.genAttrs.
  genAttrs =
    names: f:
    listToAttrs (
      map (n: {
        name = n;
        value = f n;
      }) names
    );

  # attrByPath is nixpkgs' lib.attrByPath: the value at a path of attribute
  # names, or the default when the path is not there.
  attrByPath =
    path: default: set:
    if path == [ ] then
      set
    else if isAttrs set && set ? ${head path} then
      attrByPath (tail path) default set.${head path}
    else
      default;
in
rec {
  # The store directory of the evaluating Nix, for rejecting secrets in it.
  storeDir = builtins.storeDir;

  # escapeShellArg quotes one word for POSIX shells, whatever it contains
  # (quotes, spaces, `$`, newlines); plain words stay readable. A word made
  # by shellVariable is passed on as written.
  escapeShellArg =
    arg:
    let
      s = toString arg;
    in
    if isAttrs arg && arg ? shellWord then
      arg.shellWord
    else if match "[[:alnum:],._+:@%/-]+" s != null then
      s
    else
      "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  # escapeShellArgs quotes a command line.
  escapeShellArgs = args: concatStringsSep " " (map escapeShellArg args);

  # shellVariable is the command-line word that expands a shell variable
  # the hook's caller sets ("$systemConfig"); the name is one of this
  # file's constants, never user input.
  shellVariable = name: { shellWord = "\"\$${name}\""; };

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

  # --- Secrets ------------------------------------------------------------

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

  # secretOptions are the options that name a secret file, one line each.
  # The manifest, the assertions, every command line and the NixOS unit's
  # LoadCredential= are made from this table, so a new secret is one more
  # line here (and its option in common.nix).
  #   option      its name under `cachix.`, as a path: also the argument
  #               name every function here and the shellHook take it by
  #   flag        the binary's flag for it
  #   credential  its LoadCredential= name in the NixOS unit (%d/NAME)
  #   manifest    its field in the manifest's `cache`, or null: then the
  #               hooks and the user unit pass it by flag
  secretOptions = [
    { option = [ "authTokenFile" ]; flag = "--auth-token-file"; credential = "auth-token"; manifest = "authTokenFile"; }
    { option = [ "signingKeyFile" ]; flag = "--signing-key-file"; credential = "signing-key"; manifest = "signingKeyFile"; }
    { option = [ "configFile" ]; flag = "--config"; credential = "cachix-config"; manifest = null; }
    { option = [ "s3" "credentialsFile" ]; flag = "--s3-credentials-file"; credential = "s3-credentials"; manifest = null; }
  ];

  # secretArgs are the argument names the secrets come in (s3 for
  # s3.credentialsFile).
  secretArgs = uniqueBy (n: n) (map (s: head s.option) secretOptions);

  # secretsOf picks the secrets out of a set of arguments, or out of a
  # module's `cachix` options: the `secrets` the functions below pass on.
  secretsOf = args: intersectAttrs (genAttrs secretArgs (_: null)) args;

  # withSecrets gives f (a function of named arguments, one of them
  # `secrets`) the secrets among its arguments as one set, so that it
  # lists them once; its other arguments are checked as usual.
  withSecrets = f: args: f (removeAttrs args secretArgs // { secrets = secretsOf args; });

  # givenSecrets lists the secretOptions entries that `secrets` sets, each
  # with its `path`.
  givenSecrets =
    secrets:
    filter (s: s.path != null) (
      map (s: s // { path = attrByPath s.option null secrets; }) secretOptions
    );

  # optionName names an entry of secretOptions in messages: "s3.credentialsFile".
  optionName = s: concatStringsSep "." s.option;

  # secretFlags pass the secrets the manifest does not carry (configFile,
  # s3.credentialsFile) by path, as activation and the user unit do; the
  # binary reads the others from the manifest.
  secretFlags =
    secrets:
    concatMap (s: [
      s.flag
      s.path
    ]) (filter (s: s.manifest == null) (givenSecrets secrets));

  # credentialFlags pass every secret as the NixOS unit's credential: the
  # copy systemd makes under %d, readable only by the unit, which wins over
  # the manifest's path (the hardened unit cannot read a home directory).
  credentialFlags =
    secrets:
    concatMap (s: [
      s.flag
      (credentialPath s.credential)
    ]) (givenSecrets secrets);

  # loadCredentials is the unit's LoadCredential= list for credentialFlags.
  loadCredentials =
    secrets: map (s: "${s.credential}:${escapeSystemdSpecifiers s.path}") (givenSecrets secrets);

  # --- The manifest ---------------------------------------------------------

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
  # package often comes twice). Packages of pushBuildClosures get
  # `closure = "build"` (a package in both lists takes the build closure);
  # they are entered by their output path, like pushPackages, so that they
  # are built first and their inputs are realised. The derivations of
  # pushInputsOf are entered by their .drv with `closure = "build"` and are
  # not built: unsafeDiscardOutputDependency turns the .drv's context into
  # a plain one, so the manifest keeps the .drv alive without depending on
  # its outputs (or on every output of every derivation below it, which a
  # drvPath's own context would ask for).
  entries =
    {
      packages,
      pushBuildClosures ? [ ],
      pushInputsOf ? [ ],
      pin ? { },
    }:
    let
      pinOn = pin.enable or false;
      names = pin.names or { };
      entry = closure: pkg: {
        name = nameOf pkg;
        storePath = toString pkg; # keeps the string context: the package is built first
        # A store-path string has no system: the host's, when the module
        # gives it (pin.hostSystem), so its pin is named as a package's.
        system = if isAttrs pkg && pkg ? system then pkg.system else pin.hostSystem or null;
        inherit closure;
      };
      raw = map (entry "runtime") packages ++ map (entry "build") pushBuildClosures;
      isBuild = p: any (e: e.storePath == p && e.closure == "build") raw;
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
      drvEntry = drv: {
        name = "${nameOf drv}-inputs";
        storePath = unsafeDiscardOutputDependency drv.drvPath;
        closure = "build";
      };
    in
    map (
      e:
      { inherit (e) name storePath; }
      // (if isBuild e.storePath then { closure = "build"; } else { })
      // (if pinOn then { pin = pinFor e; } else { })
    ) (uniqueBy (e: e.storePath) raw)
    ++ uniqueBy (e: e.storePath) (map drvEntry (filter isDerivation pushInputsOf));

  # isDerivation is nixpkgs' lib.isDerivation.
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";

  # exclusion is the manifest's push.exclude and push.upstream from the
  # options of the same names (null/empty values left out), or { }.
  exclusion =
    push:
    let
      e = push.exclude or { };
      u = push.upstream or { };
      ex = filter (n: n.value != null && n.value != [ ]) [
        { name = "names"; value = e.names or [ ]; }
        { name = "regex"; value = e.regex or [ ]; }
        { name = "maxNarSize"; value = e.maxNarSize or null; }
        { name = "mode"; value = if (e.mode or "prune") == "prune" then null else e.mode; }
      ];
      up = filter (n: n.value != null && n.value != [ ]) [
        { name = "filter"; value = u.filter or null; }
        { name = "keys"; value = u.keys or [ ]; }
      ];
    in
    (if ex == [ ] then { } else { exclude = listToAttrs ex; })
    // (if up == [ ] then { } else { upstream = listToAttrs up; });

  # manifestArgs are the arguments the manifest is made from, besides the
  # secrets, with their defaults: the `cachix.*` options of the same names
  # (the modules pass pushPackages as packages) and the origin. manifest,
  # problems, writeManifest, the modules (fromOptions) and shell.nix all
  # take them from here.
  manifestArgs = {
    cacheName = null;
    cacheUrl = null;
    host = null;
    packages = [ ];
    pushBuildClosures = [ ];
    # Derivations whose inputs are pushed without building them (the
    # shellHook's pushShellInputs puts its shell here).
    pushInputsOf = [ ];
    pin = { };
    push = { };
    origin = "manual";
  };

  # manifestSettings completes a set of manifest arguments with the
  # defaults and gathers its secrets into `secrets`; `others` are the
  # names the caller takes besides. Any other name is an error that says
  # which names there are (a misspelt cacheName must not go unnoticed).
  manifestSettings =
    others: args:
    let
      known = attrNames manifestArgs ++ secretArgs ++ others;
      unknown = filter (n: !(elem n known)) (attrNames args);
    in
    if unknown != [ ] then
      throw "cachix-select: unknown argument ${concatStringsSep ", " unknown}; the arguments are ${concatStringsSep ", " known}."
    else
      manifestArgs // removeAttrs args secretArgs // { secrets = secretsOf args; };

  # manifest is the manifest as a Nix value (the README's "The manifest
  # (version 1)"). Store paths keep their string context, so a file
  # written from it depends on them. Secrets the manifest has no field for
  # (configFile, s3.credentialsFile) are accepted and left out: the hooks
  # pass them by flag.
  manifest =
    args:
    let
      a = manifestSettings [ ] args;
    in
    {
      version = 1;
      cache = {
        name = a.cacheName;
        inherit (a) host;
        url = a.cacheUrl;
      }
      // listToAttrs (
        map (s: {
          name = s.manifest;
          value = attrByPath s.option null a.secrets;
        }) (filter (s: s.manifest != null) secretOptions)
      );
      paths = entries { inherit (a) packages pushBuildClosures pushInputsOf pin; };
      push =
        listToAttrs (
          map (n: {
            name = n;
            value = a.push.${n};
          }) (filter (n: (a.push.${n} or null) != null) [ "jobs" "compression" "compressionLevel" ])
        )
        // {
          omitDeriver = a.push.omitDeriver or false;
        }
        // exclusion a.push;
      inherit (a) origin;
    };

  # manifestJSON is the text of the manifest file, unchecked (the
  # modules report the problems as assertions).
  manifestJSON = args: toJSON (manifest args);

  # renderManifest is manifestJSON after the problems: it throws them, so
  # a path-literal secret (copied into the world-readable store) or a
  # missing cache is refused here as it is by mkManifest. The flake's
  # lib.renderManifest.
  renderManifest =
    args:
    let
      errs = problems args;
    in
    if errs != [ ] then throw ("cachix-select: " + concatStringsSep "\n" errs) else manifestJSON args;

  # problems lists what is wrong with the arguments of `manifest`, in
  # words that name the option (prefix "cachix." in modules, "" for the
  # shellHook). The modules turn them into assertions; lib.shellHook and
  # lib.mkManifest throw them. generationPin is the pin of the pushed
  # generation (see generationPin), which must not clash with the others.
  problems =
    args:
    let
      a = manifestSettings [ "prefix" "generationPin" ] args;
      prefix = a.prefix or "";
      generationPin = a.generationPin or null;
      s3File = a.secrets.s3.credentialsFile or null;
      isS3 = isString a.cacheUrl && hasPrefix "s3://" a.cacheUrl;
      pinned =
        entries { inherit (a) packages pushBuildClosures pin; }
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
          if a.cacheName != null && a.cacheUrl != null then
            "Set only one of ${prefix}cacheName (a Cachix cache) and ${prefix}cacheUrl (a plain binary cache), not both."
          else if a.cacheName == null && a.cacheUrl == null then
            "Set ${prefix}cacheName to your Cachix cache's name (\"mycache\" for mycache.cachix.org), or ${prefix}cacheUrl to a plain binary cache (\"file:///srv/nix-cache\")."
          else
            null
        )
        (
          if a.host != null && a.cacheUrl != null then
            "${prefix}host is the Cachix API host and applies only with ${prefix}cacheName; remove it when using ${prefix}cacheUrl."
          else
            null
        )
        (
          if s3File != null && !isS3 && (a.cacheName != null || a.cacheUrl != null) then
            "${prefix}s3.credentialsFile is the AWS credentials file of an s3:// cache, but ${
              if a.cacheUrl == null then "the cache is the Cachix cache ${prefix}cacheName" else "${prefix}cacheUrl is ${a.cacheUrl}"
            }: set ${prefix}cacheUrl to the bucket (\"s3://BUCKET?region=REGION\"), or remove ${prefix}s3.credentialsFile."
          else
            null
        )
      ]
      ++ map (s: runtimePathProblem "${prefix}${optionName s}" s.path) (givenSecrets a.secrets)
      ++ [ (keepProblem "${prefix}pin.keep" (a.pin.keep or null)) ]
      ++ optional (!all isDerivation a.pushInputsOf) [
        "${prefix}pushInputsOf takes derivations (their inputs are pushed by their .drv, without building them); a store path or string has no derivation to read."
      ]
      ++ map (
        n:
        "Pin name \"${n}\" would be used by ${toString (length (holders n))} different store paths (${concatStringsSep ", " (holders n)}); pins need distinct names: push only one of them, or turn pinning off (${prefix}pin.names renames by package name, so it cannot separate two packages of the same name)."
      ) dupes
    );

  # nixosTokenProblem is the NixOS module's extra check: in background
  # mode the push runs in the hardened system unit (no home directory, no
  # environment of yours), which finds a Cachix token only through
  # authTokenFile or configFile, and S3 keys only through
  # s3.credentialsFile. Without them the push would stay queued for ever,
  # so the build fails instead.
  nixosTokenProblem = withSecrets (
    {
      prefix ? "cachix.",
      cacheName ? null,
      cacheUrl ? null,
      mode ? "background",
      secrets,
    }:
    let
      unset = names: all (n: (secrets.${n} or null) == null) names;
    in
    if mode != "background" then
      null
    else if cacheName != null && unset [ "authTokenFile" "configFile" ] then
      "${prefix}cacheName is set and ${prefix}mode is \"background\", so cachix-select.service pushes to Cachix, and that unit cannot find a token by itself (it runs hardened, without your home directory or environment). Set ${prefix}authTokenFile to a file holding the token (\"/run/secrets/cachix-token\", from sops-nix or agenix), or ${prefix}configFile to a cachix.dhall with an authToken (\"/root/.config/cachix/cachix.dhall\", which `cachix authtoken` writes). A public cache needs one too: anyone may read it, only a token may write to it."
    else if isString cacheUrl && hasPrefix "s3://" cacheUrl && (secrets.s3.credentialsFile or null) == null then
      "${prefix}cacheUrl is an s3:// bucket and ${prefix}mode is \"background\", so cachix-select.service pushes to it, and that unit cannot find S3 keys by itself (it runs hardened, without your home directory's ~/.aws or your environment). Set ${prefix}s3.credentialsFile to an AWS credentials file (\"/run/secrets/aws-credentials\", from sops-nix or agenix: [default] with aws_access_key_id and aws_secret_access_key)."
    else
      null
  );

  # assertions turns problems into the modules' assertions.
  assertions = map (message: {
    assertion = false;
    inherit message;
  });

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

  # --- The modules ------------------------------------------------------------

  # unitName names the systemd unit (and timer) of both modules.
  unitName = "cachix-select";

  # fromOptions is what the common module and the wiring of both modules
  # make of the `cachix.*` option values (cfg), so that neither spells it
  # out: whether the module acts, the binary, the manifest's arguments,
  # the secrets, the generation's pin (null unless pushGeneration), the
  # assertions' messages, and the arguments every activation snippet
  # takes. pkgs gives the system the pins are named after.
  fromOptions =
    { cfg, pkgs }:
    let
      inherit (pkgs.stdenv.hostPlatform) system;
      secrets = secretsOf cfg;
      pin =
        if cfg.pushGeneration then
          generationPin {
            inherit (cfg) pin;
            inherit system;
          }
        else
          null;
      manifestArgs' =
        intersectAttrs manifestArgs cfg
        // secrets
        // {
          packages = cfg.pushPackages;
          pin = cfg.pin // {
            hostSystem = system;
          };
        };
      exe = "${cfg.package}/bin/cachix-select";
    in
    {
      active = cfg.enable && (cfg.pushPackages != [ ] || cfg.pushBuildClosures != [ ] || cfg.pushGeneration);
      inherit exe secrets;
      generationPin = pin;
      manifestArgs = manifestArgs';
      problems =
        problems (
          manifestArgs'
          // {
            prefix = "cachix.";
            generationPin = pin;
          }
        )
        ++ optional (timeoutProblem "cachix.timeout" cfg.timeout != null) [ (timeoutProblem "cachix.timeout" cfg.timeout) ];
      activation =
        intersectAttrs hookDefaults cfg
        // secrets
        // {
          inherit exe;
          inherit (cfg) pushGeneration;
          generationPin = pin;
          manifest = "${cfg.manifest}";
        };
    };

  # timeoutProblem refuses a duration of zero ("0s", "0m0s"), which Go
  # reads as no limit at all: a foreground push that may hang the switch.
  timeoutProblem =
    option: d:
    if isString d && match ".*[1-9].*" d == null then
      "${option} is ${d}, which is no time at all; give how long a foreground push may take, such as \"10m\" (use mode = \"background\" for no wait)."
    else
      null;

  # --- The hooks ------------------------------------------------------------

  # generationArgs are the flags that name and pin the generation passed
  # with --root.
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

  # hookDefaults are the defaults of the hooks' own settings: those of the
  # `cachix.*` options of the same names, and of the shellHook's arguments.
  hookDefaults = {
    mode = "background";
    strict = false;
    timeout = "10m";
    stateDir = null;
  };

  # activateArgs is the `cachix-select activate` command line shared by all
  # hooks, without the manifest (flags must come before it). root is the
  # shell variable that holds the generation being activated, for
  # --root: home-manager's activation script sets newGenPath (its
  # modules/lib-bash/activation-init.sh), NixOS's sets systemConfig
  # (activation-script.nix); the manifest cannot list that generation,
  # being part of its closure.
  activateArgs =
    args:
    withSecrets (
      {
        exe,
        mode,
        strict,
        timeout,
        stateDir,
        systemdUnit ? null,
        userUnit ? false,
        restartList ? null,
        generationPin ? null,
        root ? null,
        dryRun ? false,
        secrets,
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
      ++ secretFlags secrets
      ++ generationArgs generationPin
      ++ optional (root != null) [
        "--root"
        (shellVariable root)
      ]
      # A dry run is a report: it never fails the activation (what strict
      # refuses, such as a push that cannot be queued, cannot be seen
      # without doing it).
      ++ optional (strict && !dryRun) [ "--strict" ]
    ) (hookDefaults // args);

  # activateCommand is a hook's `activate` command for one manifest:
  # args are activateArgs' and the snippet's own (`manifest`, and
  # `pushGeneration` with the shell variable `root` that holds the
  # generation); `extra` are words that go before the manifest.
  activateCommand =
    {
      root ? null,
      extra ? [ ],
    }:
    {
      manifest,
      pushGeneration ? false,
      generationPin ? null,
      ...
    }@args:
    dryRun:
    escapeShellArgs (
      activateArgs (
        removeAttrs args [ "manifest" "pushGeneration" ]
        // {
          inherit dryRun;
          generationPin = if pushGeneration then generationPin else null;
          root = if pushGeneration then root else null;
        }
      )
      ++ extra
      ++ [ manifest ]
    );

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
  # ($newGenPath) is pushed too. Arguments: those of activateArgs, plus
  # manifest, pushGeneration and systemctlDir (where systemctl is).
  homeManagerActivation =
    {
      systemctlDir ? null,
      ...
    }@args:
    let
      inherit (hookDefaults // args) strict;
      command = activateCommand {
        root = "newGenPath";
        extra = [ { shellWord = "\${VERBOSE+--verbose}"; } ];
      } (
        removeAttrs args [ "systemctlDir" ]
        # A user unit, also when root runs home-manager: the system unit
        # of that name belongs to the NixOS module.
        // {
          userUnit = true;
        }
      );
      # `systemctl --user` needs XDG_RUNTIME_DIR, which is unset when
      # activation runs from the home-manager NixOS module.
      env =
        "env \"XDG_RUNTIME_DIR=\${XDG_RUNTIME_DIR:-/run/user/$UID}\""
        + (if systemctlDir == null then "" else " PATH=${escapeShellArg systemctlDir}:\"$PATH\"");
    in
    ''
      # cachix-select: push cachix.pushPackages (what is pending: cachix-select queue list)
      if [[ -v DRY_RUN ]]; then
        ${guarded false (command true) "the dry run failed; continuing"}
      else
        ${guarded strict "run ${env} ${command false}" queueFailed}
      fi
    '';

  # nixosActivation is the text of system.activationScripts.cachixSelect.
  # NixOS runs activation scripts at every boot (NIXOS_ACTION unset, no
  # network yet) and on dry-activate: only switch and test push, and
  # dry-activate reports. `path` holds directories for nix, which the
  # activation script's PATH lacks (foreground and dry runs use it).
  # Arguments: those of activateArgs (stateDir, systemdUnit and
  # restartList default to the NixOS module's), plus manifest,
  # pushGeneration and path.
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
      path ? [ ],
      ...
    }@args:
    let
      inherit (hookDefaults // args) strict;
      command =
        dryRun:
        (if path == [ ] then "" else "PATH=${escapeShellArg (concatStringsSep ":" path)}:\"$PATH\" ")
        + activateCommand { root = "systemConfig"; } (
          {
            stateDir = "/var/lib/cachix-select";
            systemdUnit = "${unitName}.service";
            restartList = "/run/nixos/activation-restart-list";
          }
          // removeAttrs args [ "path" ]
        ) dryRun;
    in
    ''
      # cachix-select: push cachix.pushPackages on switch and test only (never at boot)
      case "''${NIXOS_ACTION-}" in
        switch | test)
          ${guarded strict (command false) queueFailed}
          ;;
        dry-activate)
          ${guarded false (command true) "the dry run failed; continuing"}
          ;;
      esac
    '';

  # shellHook is the text a mkShell runs on entry: one `activate` call that
  # returns at once (the push runs detached, one at a time per user, output
  # in the state directory's push.log) and prints one line, or nothing
  # when there is nothing new. Arguments: those of activateArgs, plus
  # manifest.
  shellHook = args: ''
    # cachix-select: push the selected packages in the background
    ${guarded (hookDefaults // args).strict (activateCommand { } args false) queueFailed}
  '';

  # shellInputDefaults are the shellHook's own arguments besides the
  # hook's: pushShellInputs = true also pushes the dev shell's input
  # closure (what entering the shell needs: stdenv and the closures of its
  # inputs, so that it opens at once on another machine, or in CI), read
  # from shellInputs: the mkShell arguments that carry the inputs
  # (packages, inputsFrom, buildInputs, nativeBuildInputs, …; null: those
  # of `mkShell { inherit packages; }`), or a shell derivation made
  # without this hook. The hook cannot take the shell it is part of: that
  # shell's derivation depends on the hook's text.
  shellInputDefaults = {
    pushShellInputs = false;
    shellInputs = null;
  };

  # mkShellHook is modules/shell.nix (and the flake's lib.shellHook): the
  # manifest rendered and checked from the arguments (an unknown argument
  # or a problem throws, naming it), and the hook that pushes it. The
  # arguments: packages, those of manifestArgs and secretOptions,
  # hookDefaults' (the hook's own) and shellInputDefaults'. The shell whose
  # inputs are pushed goes into pushInputsOf: its .drv is read, nothing
  # of it is built.
  mkShellHook =
    {
      writeTextFile,
      package,
      mkShell ? null,
    }:
    args:
    let
      a = shellInputDefaults // args;
      given = a.shellInputs;
      shell =
        if !a.pushShellInputs then
          null
        else if isDerivation given then
          given
        else if given != null && !isAttrs given then
          throw "cachix-select: shellInputs must be mkShell's arguments (an attribute set) or a shell derivation, not a ${builtins.typeOf given}"
        else if mkShell == null then
          throw "cachix-select: pushShellInputs needs pkgs.mkShell (modules/shell.nix takes it from pkgs), or shellInputs given as a shell derivation"
        else
          mkShell (if given == null then { packages = args.packages or [ ]; } else given);
      badTimeout = timeoutProblem "timeout" (args.timeout or null);
      manifest =
        if given != null && !a.pushShellInputs then
          throw "cachix-select: shellInputs is set but pushShellInputs is not; set pushShellInputs = true to push the shell's inputs"
        else if badTimeout != null then
          throw "cachix-select: ${badTimeout}"
        else
          writeManifest (
            removeAttrs args (attrNames hookDefaults ++ attrNames shellInputDefaults)
            // {
              inherit writeTextFile package;
              origin = "shell";
              pushInputsOf = (args.pushInputsOf or [ ]) ++ optional (shell != null) [ shell ];
            }
          );
    in
    shellHook (
      intersectAttrs hookDefaults args
      // secretsOf args
      // {
        exe = "${package}/bin/cachix-select";
        manifest = "${manifest}";
      }
    );

  # --- The units ------------------------------------------------------------

  # flushArgs is the command of the units that retry the queue. With
  # systemd credentials (credentials = true), every secret comes from the
  # unit's credentials directory (%d), never from its environment or the
  # store; otherwise the secrets the manifest lacks are given by their
  # paths. Render it with escapeSystemdExecArgs. --fail-fast: a host that
  # cannot be reached at all (refused, unknown, no route) ends the run at
  # once instead of holding the unit for the retry budget; the entry stays
  # queued for the timer or the next activation.
  flushArgs = withSecrets (
    {
      exe,
      stateDir ? null,
      credentials ? false,
      secrets,
    }:
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
    ++ (if credentials then credentialFlags secrets else secretFlags secrets)
  );

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
  #
  # A file:// cache's directory is made writable (ReadWritePaths, or a
  # bind mount through ProtectHome=tmpfs under /home, /root, /run/user);
  # "-": a directory that does not exist leaves the unit starting, and
  # the push stays queued saying why (see nixosCacheDirProblem for /tmp).
  nixosService = withSecrets (
    {
      exe,
      stateDir,
      unit,
      nixPackage,
      cacheUrl ? null,
      secrets,
    }:
    let
      dir = fileCacheDir cacheUrl;
      inHome = dir != null && underAny homeDirs dir;
    in
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
        ExecStart = escapeSystemdExecArgs (
          flushArgs (
            {
              inherit exe stateDir;
              credentials = true;
            }
            // secrets
          )
        );
        LoadCredential = loadCredentials secrets;
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
      }
      // (
        if dir == null then
          { }
        else if inHome then
          {
            ProtectHome = "tmpfs";
            BindPaths = [ "-${dir}" ];
          }
        else
          { ReadWritePaths = [ "-${dir}" ]; }
      );
    }
  );

  # fileCacheDir is the directory of a file:// cache URL
  # ("file:///srv/nix-cache?compression=zstd" → "/srv/nix-cache"), or null.
  fileCacheDir =
    url:
    let
      m = if isString url then builtins.match "file://([^?]*)(\\?.*)?" url else null;
    in
    if m == null then null else head m;

  # homeDirs are what ProtectHome hides, privateTmpDirs what PrivateTmp
  # replaces, in the NixOS unit.
  homeDirs = [ "/home" "/root" "/run/user" ];
  privateTmpDirs = [ "/tmp" "/var/tmp" ];
  underAny = dirs: path: any (d: path == d || hasPrefix "${d}/" path) dirs;

  # nixosCacheDirProblem is the NixOS module's check of a file:// cache
  # that cachix-select.service writes (always in background mode; in
  # foreground mode when the timer retries): the unit's /tmp and /var/tmp
  # are its own (PrivateTmp), so a cache there would be written where
  # nobody sees it; and systemd cannot be given a path with spaces or "%".
  nixosCacheDirProblem =
    {
      prefix ? "cachix.",
      cacheUrl ? null,
      mode ? "background",
      retryInterval ? null,
    }:
    let
      dir = fileCacheDir cacheUrl;
    in
    if dir == null || (mode != "background" && retryInterval == null) then
      null
    else if underAny privateTmpDirs dir then
      "${prefix}cacheUrl is ${cacheUrl}, under ${
        head (filter (d: underAny [ d ] dir) privateTmpDirs)
      }, but cachix-select.service (which pushes in background mode, and retries what is queued) has a /tmp and /var/tmp of its own (PrivateTmp): the cache would be written where nothing else sees it. Put the cache elsewhere (\"file:///srv/nix-cache\"), or set ${prefix}mode = \"foreground\" and ${prefix}retryInterval = null."
    else if builtins.match "/[^ \t\n%\"'\\\\]*" dir == null then
      "${prefix}cacheUrl is ${cacheUrl}: its directory must be an absolute path without spaces, quotes, backslashes or \"%\", since cachix-select.service is given it as a systemd path (ReadWritePaths)."
    else
      null;

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
  # The user's own files are readable there: the secrets the manifest
  # lacks go by path.
  homeManagerService = withSecrets (
    {
      exe,
      stateDir,
      nixPackage ? null,
      secrets,
    }:
    {
      Unit.Description = "Push queued Nix store paths to a binary cache (cachix-select)";
      Service = {
        Type = "oneshot";
        ExecStart = escapeSystemdExecArgs (flushArgs ({ inherit exe stateDir; } // secrets));
        Environment = optional (nixPackage != null) [ "PATH=${nixPackage}/bin" ];
      };
    }
  );

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
}

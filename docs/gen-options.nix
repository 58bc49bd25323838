# Renders docs/modules.md from the modules themselves: every option that
# modules/home-manager.nix and modules/nixos.nix declare (with whatever they
# import), and the arguments of modules/shell.nix and of the flake's
# lib.mkManifest. Run it through docs/gen-options.sh, never by hand.
#
# Builtins only, like modules/lib.nix: CI has no nixpkgs. `lib` defaults to
# the small stand-in below for the parts of nixpkgs' lib that option
# declarations use (mkOption, types, literalExpression, …); its types
# describe themselves in the same words as nixpkgs' (lib/types.nix). Pass a
# real nixpkgs lib (`--arg lib 'import …/lib'`) to render with the real
# types instead: gen-options.sh --check does both when NIXPKGS_LIB_SRC is
# set, so the stand-in's wording is checked against nixpkgs'.
#
# Options are read, never evaluated as a configuration: a module is called
# with a `config` that throws, so a default that reads config must come
# with a defaultText (as nixpkgs' documentation requires too).
{
  lib ? null,
}:
let
  inherit (builtins)
    all
    attrNames
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    functionArgs
    genList
    head
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    mapAttrs
    match
    replaceStrings
    sort
    split
    stringLength
    substring
    toJSON
    ;

  # --- a stand-in for the option parts of nixpkgs' lib --------------------

  # phrase is nixpkgs' optionDescriptionPhrase: a nested type's
  # description, in parentheses unless its class fits the caller's.
  phrase = fits: t: if fits (t.descriptionClass or null) then t.description else "(${t.description})";

  mkOptionType =
    {
      name,
      description ? null,
      descriptionClass ? null,
      ...
    }@attrs:
    attrs
    // {
      _type = "option-type";
      description = if description == null then name else description;
      inherit descriptionClass;
    };

  showValue =
    v:
    if isString v then
      ''"${v}"''
    else if isInt v then
      toString v
    else if isBool v then
      (if v then "true" else "false")
    else
      "<${builtins.typeOf v}>";

  either =
    t1: t2:
    mkOptionType {
      name = "either";
      description =
        if (t1.descriptionClass or null) == "nonRestrictiveClause" then
          "${t1.description}, or ${phrase (c: c == "noun" || c == "conjunction") t2}"
        else
          "${phrase (c: c == "noun" || c == "conjunction") t1} or ${
            phrase (c: c == "noun" || c == "conjunction" || c == "composite") t2
          }";
      descriptionClass = "conjunction";
    };

  noun = name: description: mkOptionType { inherit name description; descriptionClass = "noun"; };

  between =
    lo: hi:
    noun "intBetween" "integer between ${toString lo} and ${toString hi} (both inclusive)";

  stubTypes = rec {
    inherit mkOptionType either;
    anything = noun "anything" "anything";
    raw = noun "raw" "raw value";
    unspecified = noun "unspecified" "unspecified value";
    bool = noun "bool" "boolean";
    int = noun "int" "signed integer";
    ints = {
      inherit between;
      unsigned = mkOptionType {
        name = "unsignedInt";
        description = "unsigned integer, meaning >=0";
        descriptionClass = "nonRestrictiveClause";
      };
      positive = mkOptionType {
        name = "positiveInt";
        description = "positive integer, meaning >0";
        descriptionClass = "nonRestrictiveClause";
      };
      u16 = noun "unsignedInt16" "16 bit unsigned integer; between 0 and 65535 (both inclusive)";
    };
    port = ints.u16;
    str = noun "str" "string";
    nonEmptyStr = noun "nonEmptyStr" "non-empty string";
    separatedString = sep: noun "separatedString" "strings concatenated with ${toJSON sep}";
    lines = separatedString "\n";
    strMatching = pattern: noun "strMatching ${toJSON pattern}" "string matching the pattern ${pattern}";
    path = noun "path" "absolute path";
    package = noun "package" "package";
    attrs = mkOptionType { name = "attrs"; description = "attribute set"; };
    listOf =
      t:
      mkOptionType {
        name = "listOf";
        description = "list of ${phrase (c: c == "noun" || c == "composite") t}";
        descriptionClass = "composite";
      };
    attrsOf =
      t:
      mkOptionType {
        name = "attrsOf";
        description = "attribute set of ${phrase (c: c == "noun" || c == "composite") t}";
        descriptionClass = "composite";
      };
    lazyAttrsOf =
      t:
      mkOptionType {
        name = "lazyAttrsOf";
        description = "lazy attribute set of ${phrase (c: c == "noun" || c == "composite") t}";
        descriptionClass = "composite";
      };
    nullOr =
      t:
      mkOptionType {
        name = "nullOr";
        description = "null or ${phrase (c: c == "noun" || c == "conjunction") t}";
        descriptionClass = "conjunction";
      };
    enum =
      values:
      mkOptionType {
        name = "enum";
        description =
          if values == [ ] then
            "impossible (empty enum)"
          else if length values == 1 then
            "value ${showValue (head values)} (singular enum)"
          else
            "one of ${concatStringsSep ", " (map showValue values)}";
        descriptionClass = if length values < 2 then "noun" else "conjunction";
      };
    oneOf = ts: foldl' either (head ts) (builtins.tail ts);
    uniq = t: t;
    submodule = _: noun "submodule" "submodule";
  };

  stubLib = rec {
    types = stubTypes;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption =
      name:
      mkOption {
        default = false;
        example = true;
        description = "Whether to enable ${name}.";
        type = types.bool;
      };
    mkPackageOption =
      _pkgs: name:
      {
        nullable ? false,
        default ? name,
        example ? null,
        extraDescription ? "",
        pkgsText ? "pkgs",
      }:
      let
        last = l: builtins.elemAt l (length l - 1);
        name' = if isList name then last name else name;
        default' = if isList default then default else [ default ];
      in
      mkOption (
        (if default != null then { defaultText = literalExpression "${pkgsText}.${concatStringsSep "." default'}"; } else { })
        // {
          description = "The ${name'} package to use." + (if extraDescription == "" then "" else " ") + extraDescription;
          type = if nullable then types.nullOr types.package else types.package;
        }
        // (
          if example != null then
            {
              example = literalExpression (
                if isList example then "${pkgsText}.${concatStringsSep "." example}" else example
              );
            }
          else
            { }
        )
      );
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    literalMD = text: {
      _type = "literalMD";
      inherit text;
    };
    mdDoc = s: s;
    options.mergeEqualOption = _loc: defs: (head defs).value;
    # What module bodies may name outside their options (never forced here).
    mkIf = cond: content: { inherit cond content; };
    mkMerge = contents: { inherit contents; };
    mkDefault = v: v;
    mkForce = v: v;
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: a: if cond then a else { };
  };

  l = if lib == null then stubLib else lib;

  # --- reading the modules -------------------------------------------------

  moduleArgs = {
    lib = l;
    config = throw "docs/gen-options.nix: an option declaration read `config`; give that option a defaultText";
    pkgs = { };
    options = { };
  };

  isOption = x: isAttrs x && (x._type or null) == "option";

  # mergeTrees merges two option trees, option by option.
  mergeTrees =
    a: b:
    a
    // mapAttrs (
      n: v:
      if a ? ${n} && isAttrs v && isAttrs a.${n} && !(isOption v) && !(isOption a.${n}) then
        mergeTrees a.${n} v
      else
        v
    ) b;

  # optionsOf is the option tree a module declares, its imports' included.
  optionsOf =
    m:
    let
      f = if isPath m || isString m then import m else m;
      r = if isFunction f then f moduleArgs else f;
    in
    foldl' mergeTrees (r.options or { }) (map optionsOf (r.imports or [ ]));

  # flatten lists the options of a tree as { name; opt; }.
  flatten =
    prefix: tree:
    concatMap (
      n:
      let
        v = tree.${n};
        name = if prefix == "" then n else "${prefix}.${n}";
      in
      if isOption v then
        [ { inherit name; opt = v; } ]
      else if isAttrs v then
        flatten name v
      else
        [ ]
    ) (attrNames tree);

  cachixOptions = file: flatten "cachix" ((optionsOf file).cachix or (throw "${toString file} declares no cachix options"));

  modules = [
    {
      label = "home-manager";
      opts = cachixOptions ../modules/home-manager.nix;
    }
    {
      label = "NixOS";
      opts = cachixOptions ../modules/nixos.nix;
    }
  ];

  byName = opts: listToAttrs (map (o: { name = o.name; value = o.opt; }) opts);
  tables = map (m: m // { byName = byName m.opts; }) modules;

  names = sort (a: b: a < b) (attrNames (foldl' (acc: m: acc // m.byName) { } tables));

  # --- rendering -----------------------------------------------------------

  lower = s: replaceStrings upperChars lowerChars s;
  chars = s: genList (i: substring i 1 s) (stringLength s);
  upperChars = chars "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  lowerChars = chars "abcdefghijklmnopqrstuvwxyz";

  # anchor is GitHub's heading id for a heading `cachix.x.y`.
  anchor = name: lower (replaceStrings [ "." ] [ "" ] name);

  nixString = s: "\"" + replaceStrings [ "\\" "\"" "\${" "\n" "\t" ] [ "\\\\" "\\\"" "\\\${" "\\n" "\\t" ] s + "\"";

  attrName = n: if match "[A-Za-z_][A-Za-z0-9_'-]*" n != null then n else nixString n;

  # toNix writes a value as the Nix expression that denotes it.
  toNix =
    v:
    if v == null then
      "null"
    else if isBool v then
      (if v then "true" else "false")
    else if isInt v || isFloat v then
      toString v
    else if isString v then
      nixString v
    else if isPath v then
      toString v
    else if isList v then
      (if v == [ ] then "[ ]" else "[ ${concatStringsSep " " (map toNix v)} ]")
    else if isAttrs v && elem (v._type or null) [ "literalExpression" "literalMD" ] then
      v.text
    else if isAttrs v && v ? outPath then
      "<derivation>"
    else if isAttrs v then
      (if v == { } then "{ }" else "{ ${concatStringsSep " " (map (n: "${attrName n} = ${toNix v.${n}};") (attrNames v))} }")
    else if isFunction v then
      "<function>"
    else
      throw "docs/gen-options.nix: cannot render a ${builtins.typeOf v}";

  # code puts text in a code span (or a block when it has several lines).
  code =
    t:
    if match ".*\n.*" t != null then
      "\n\n  ```nix\n  ${replaceStrings [ "\n" ] [ "\n  " ] t}\n  ```"
    else if match ".*`.*" t != null then
      "`` ${t} ``"
    else
      "`${t}`";

  # cell is code for a table cell: one line, `|` escaped.
  cell = t: "`${replaceStrings [ "|" "\n" ] [ "\\|" " " ] t}`";

  defaultOf =
    o:
    if o ? defaultText then
      toNix o.defaultText
    else if o ? default then
      toNix o.default
    else
      null;

  # Markdown roles of nixpkgs' option descriptions ({option}`x`) become
  # plain code spans.
  plainRoles = s: concatStringsSep "" (map (x: if isList x then "`" else x) (split "[{][a-z]+[}]`" s));

  trim =
    s:
    let
      m = match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s;
    in
    if m == null then "" else head m;

  typeText = t: if match ".*[][\\\\*_<>|`].*" t != null then "`${t}`" else t;

  # per lists, for one option, what each module says about one aspect.
  per =
    name: f:
    concatMap (m: if m.byName ? ${name} then [ { inherit (m) label; value = f m.byName.${name}; } ] else [ ]) tables;

  # line renders an aspect once when all modules agree, else per module.
  line =
    what: entries: render:
    let
      values = map (e: e.value) entries;
      same = all (v: v == head values) values;
    in
    if all (v: v == null) values then
      [ ]
    else if same then
      [ "- ${what}: ${render (head values)}" ]
    else
      [ "- ${what}:" ] ++ map (e: "  - ${e.label}: ${if e.value == null then "none" else render e.value}") entries;

  optionSection =
    name:
    let
      descs = per name (o: trim (plainRoles (o.description or "")));
      ds = map (e: e.value) descs;
      labels = map (e: e.label) descs;
      description =
        if all (d: d == head ds) ds then
          [ (head ds) ]
        else
          [ (concatStringsSep "\n\n" (map (e: "*${e.label}:* ${e.value}") descs)) ];
    in
    concatStringsSep "\n" (
      [
        "### `${name}`"
        ""
      ]
      ++ description
      ++ [ "" ]
      ++ line "Type" (per name (o: o.type.description)) typeText
      ++ line "Default" (per name defaultOf) code
      ++ line "Example" (per name (o: if o ? example then toNix o.example else null)) code
      ++ (if any' (per name (o: o.readOnly or false)) then [ "- Read-only: set by the module" ] else [ ])
      ++ [
        "- In: ${if length labels == length tables then "both modules" else concatStringsSep ", " labels + " only"}"
        ""
      ]
    );

  any' = entries: builtins.any (e: e.value) entries;

  summaryRow =
    name:
    let
      d = map (e: e.value) (per name defaultOf);
      shown = if all (v: v == head d) d then (if head d == null then "—" else cell (head d)) else "differs";
      labels = map (e: e.label) (per name (o: true));
    in
    "| [`${name}`](#${anchor name}) | ${shown} | ${if length labels == length tables then "both" else concatStringsSep ", " labels} |";

  # --- modules/shell.nix and lib.mkManifest ---------------------------------

  pure = import ../modules/lib.nix;
  shellFile = ../modules/shell.nix;

  # The arguments of modules/shell.nix, as modules/lib.nix (mkShellHook)
  # takes them: packages (required), the manifest's, the secrets' and the
  # hook's own, each with its default as Nix text.
  shellDefaults =
    mapAttrs (_: toNix) (removeAttrs pure.manifestArgs [ "packages" "origin" ] // pure.hookDefaults // pure.shellInputDefaults)
    // listToAttrs (map (s: { name = pure.optionName s; value = "null"; }) pure.secretOptions);
  shellArgs =
    assert functionArgs (import shellFile { pkgs = { }; package = { }; }) == { packages = false; };
    sort (a: b: a < b) ([ "packages" ] ++ attrNames shellDefaults);

  # What each argument means; gen fails when the arguments change and this
  # table does not.
  shellDocs = {
    packages = [ "list of packages" "Packages to push, each with its runtime closure (as `cachix.pushPackages`)." ];
    pushBuildClosures = [ "list of packages" "As `cachix.pushBuildClosures`: packages pushed with their build closure (their derivation's realised inputs, plus the packages)." ];
    pushInputsOf = [ "list of derivations" "Derivations whose inputs are pushed (the build closure of their `.drv`, which is read when pushing), without building them; inputs not realised locally are skipped and counted. Not pinned." ];
    pushShellInputs = [ "boolean" "Also push the dev shell's input closure (stdenv and the closures of the shell's inputs: what entering the shell needs), so that it opens at once on another machine. The shell is `mkShell shellInputs`; nothing of it is built." ];
    shellInputs = [ "null, attribute set or derivation" "With `pushShellInputs`: the `mkShell` arguments that carry the shell's inputs (`packages`, `inputsFrom`, `buildInputs`, `nativeBuildInputs`, …; give the same as to your `mkShell`, which the hook cannot see), or a shell derivation made without this hook. Null: `{ inherit packages; }`." ];
    cacheName = [ "null or string" "As `cachix.cacheName`. Exactly one of `cacheName` and `cacheUrl`." ];
    cacheUrl = [ "null or string" "As `cachix.cacheUrl`." ];
    host = [ "null or string" "As `cachix.host`." ];
    authTokenFile = [ "null or runtime path string" "As `cachix.authTokenFile`: a string read at push time; Nix paths and store paths are refused." ];
    signingKeyFile = [ "null or runtime path string" "As `cachix.signingKeyFile`." ];
    configFile = [ "null or runtime path string" "As `cachix.configFile`: a cachix.dhall other than `~/.config/cachix/cachix.dhall`." ];
    "s3.credentialsFile" = [ "null or runtime path string" "As `cachix.s3.credentialsFile`: the AWS credentials file of an `s3://` `cacheUrl` (give it as `s3 = { credentialsFile = …; }`)." ];
    pin = [ "attribute set" "As `cachix.pin`: `enable`, `prefix` (null here: no per-machine default), `keep`, `names`." ];
    push = [ "attribute set" "As `cachix.push`: `jobs`, `compression`, `compressionLevel`, `omitDeriver`, `exclude` (`names`, `regex`, `maxNarSize`, `mode`), `upstream` (`filter`, `keys`)." ];
    mode = [ "\"background\" or \"foreground\"" "As `cachix.mode`. A shell has no unit of its own: a background push runs as a detached process." ];
    strict = [ "boolean" "As `cachix.strict`: when true, a failure of the hook's command is not turned into a warning." ];
    timeout = [ "Go duration string" "As `cachix.timeout` (foreground mode only)." ];
    stateDir = [ "null or string" "State directory (queue, records, push.log). Null: the binary's default, `$XDG_STATE_HOME/cachix-select`, else `~/.local/state/cachix-select`." ];
  };

  checkSame =
    what: documented: actual:
    let
      missing = filter (n: !(elem n documented)) actual;
      extra = filter (n: !(elem n actual)) documented;
    in
    if missing == [ ] && extra == [ ] then
      true
    else
      throw "docs/gen-options.nix: ${what} changed: undocumented ${toJSON missing}, gone ${toJSON extra}; update shellDocs";

  shellRow =
    n:
    let
      d = shellDocs.${n};
      default = if shellDefaults ? ${n} then cell shellDefaults.${n} else "required";
    in
    "| `${n}` | ${builtins.elemAt d 0} | ${default} | ${builtins.elemAt d 1} |";

  manifestArgs = attrNames pure.manifestArgs ++ map pure.optionName pure.secretOptions;

  shellSection =
    assert checkSame "the arguments of modules/shell.nix" (attrNames shellDocs) shellArgs;
    concatStringsSep "\n" (
      [
        "| argument | type | default | meaning |"
        "|---|---|---|---|"
      ]
      ++ map shellRow shellArgs
    );

  header = ''
    # Module options

    <!-- Generated by docs/gen-options.sh from modules/ — do not edit by hand. -->

    The home-manager module (`modules/home-manager.nix`, the flake's `homeModules.default`, alias
    `homeManagerModules.default`) and the NixOS module (`modules/nixos.nix`, `nixosModules.default`)
    declare the options below, all under `cachix`. Secret options take **runtime path strings**: the file
    is read by cachix-select when it pushes, never at evaluation, and a Nix path value or a path in the
    store is refused (a Nix path would copy the secret into the world-readable store). What the modules
    do with these options — the activation entries, the units, the queue — is in
    [design.md §6](design.md#6-the-hooks).

    Regenerate this file with `docs/gen-options.sh`; `docs/gen-options.sh --check` fails when it is stale.

    ## Summary

    | option | default | modules |
    |---|---|---|'';

in
concatStringsSep "\n" (
  [
    header
    (concatStringsSep "\n" (map summaryRow names))
    ""
    "## Options"
    ""
  ]
  ++ map optionSection names
  ++ [
    ''
      ## `modules/shell.nix` and `lib.shellHook`

      `import ./modules/shell.nix { inherit pkgs package; }` (or the flake's `lib.shellHook`, which takes
      `pkgs` and, optionally, `package` in the same attribute set as the rest) is a function of the
      arguments below and returns the text of a `shellHook`. The hook runs `cachix-select activate`, which
      returns at once: nothing is printed when the cache already has everything, else one line, and the
      push runs detached (one at a time per state directory, output in `push.log` there). A bad argument
      (both or neither of `cacheName` and `cacheUrl`, a secret given as a Nix path, …) fails the
      evaluation with the same messages as the modules' assertions, and the manifest is checked by
      `cachix-select manifest check` when it is built.
    ''
    shellSection
    ""
    ''
      ## `lib.mkManifest`

      The flake's `lib.mkManifest` renders a manifest into the store, checked by the binary while it is
      built, for CI (`nix build .#cachix-manifest -o manifest.json && cachix-select push manifest.json`).
      It takes `pkgs`, optionally `package` (the cachix-select to check it with), and the manifest
      arguments ${concatStringsSep ", " (map (n: "`${n}`") manifestArgs)}, with the meanings of the
      shellHook arguments above; `origin` (default `"manual"`) is recorded in the manifest. The flake's
      `lib.renderManifest` takes the same manifest arguments and returns the JSON text, without nixpkgs;
      like `lib.mkManifest` it refuses what is wrong with them (no cache, a path-literal secret) with an
      evaluation error.
    ''
  ]
)

# What tests/nix/run executes: the manifest and the three hook snippets,
# rendered by the real module code (modules/lib.nix, modules/shell.nix)
# with real store paths from tests/fixtures/closure.nix and the
# cachix-select binary under test (`package`, a store path holding
# bin/cachix-select). `nix-build -A files` writes them into one directory.
{
  package,
  salt,
  cacheUrl ? null,
  cacheName ? null,
  host ? null,
  authTokenFile ? null,
  configFile ? null,
  # cachix.s3.credentialsFile
  s3CredentialsFile ? null,
  stateDir,
  mode ? "background",
  strict ? false,
  exe ? null,
  # NixOS: where the snippet lists the unit (never /run/nixos in tests).
  restartList ? "${stateDir}.run/nixos/activation-restart-list",
  pushGeneration ? false,
  pin ? false,
  # The shellHook also pushes its shell's inputs (shellInputs below).
  pushShellInputs ? false,
}:
let
  pkgs = import ./stub-pkgs.nix { };
  pure = import ../../modules/lib.nix;
  pkg = builtins.storePath package;
  fixtures = import ../fixtures/closure.nix { inherit salt; };
  exe' = if exe != null then exe else "${pkg}/bin/cachix-select";

  # The secrets, as the options name them.
  secrets = {
    inherit authTokenFile configFile;
    s3.credentialsFile = s3CredentialsFile;
  };
  cacheArgs = {
    inherit
      cacheUrl
      cacheName
      host
      ;
  }
  // secrets;
  pinArgs = {
    enable = pin;
    prefix = "test";
  };
  generationPin = pure.generationPin {
    pin = pinArgs;
    system = builtins.currentSystem;
  };

  manifest = pure.writeManifest (
    cacheArgs
    // {
      inherit (pkgs) writeTextFile;
      package = pkg;
      packages = [
        fixtures.app
        fixtures.exe # also in app's closure: pushed once
        fixtures.app # listed twice: one entry
      ];
      origin = "home-manager";
      pin = pinArgs;
    }
  );

  # What both activation snippets take, as the modules' fromOptions gives it.
  activation = {
    exe = exe';
    manifest = "${manifest}";
    inherit
      mode
      strict
      stateDir
      pushGeneration
      generationPin
      ;
  }
  // secrets;
  hm = pure.homeManagerActivation (activation // { systemdUnit = "cachix-select.service"; });
  nixos = pure.nixosActivation (activation // { inherit restartList; });

  # A stand-in for the generation being activated (the NixOS system or
  # the home-manager generation): like the real one, its closure holds the
  # manifest and so the selected packages.
  generation = builtins.derivation {
    name = "test-generation-${salt}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    manifest = "${manifest}";
    args = [
      "-c"
      ''mkdir "$out" && ln -s "$manifest" "$out/cachix-select-manifest.json"''
    ];
  };

  # The units, as the modules define them (the NixOS one with the
  # secrets as credentials).
  nixosUnit = pure.nixosService (
    {
      exe = exe';
      inherit stateDir;
      unit = "cachix-select";
      nixPackage = "/nonexistent-nix";
    }
    // secrets
  );
  hmUnit = pure.homeManagerService ({ exe = exe'; inherit stateDir; } // secrets);

  # The dev shell's inputs for pushShellInputs: one built path outside the
  # packages' closure (shellExtra, with its own closure) and one never
  # built (shellUnbuilt), which the push must skip, not build.
  shellExtra = (import ../fixtures/closure.nix { salt = "${salt}-shell"; }).lib;
  shellUnbuilt = (import ../fixtures/closure.nix { salt = "${salt}-shell-unbuilt"; }).empty;
  shellInputs = {
    packages = [ shellExtra ];
    buildInputs = [ shellUnbuilt ];
  };

  shell = import ../../modules/shell.nix { inherit pkgs; package = pkg; } (
    cacheArgs
    // {
      inherit stateDir mode strict;
      packages = [ fixtures.app ];
    }
    // (if pushShellInputs then { inherit pushShellInputs shellInputs; } else { })
  );

  # The expected manifest (the README's "The manifest (version 1)"), for
  # the comparison in `check`.
  expected = {
    version = 1;
    cache = {
      name = cacheName;
      url = cacheUrl;
      inherit host authTokenFile;
      signingKeyFile = null;
    };
    paths = [
      {
        name = "app";
        storePath = "${fixtures.app}";
      }
      {
        name = "exe";
        storePath = "${fixtures.exe}";
      }
    ];
    push.omitDeriver = false;
    origin = "home-manager";
  };
in
{
  inherit manifest fixtures generation shellExtra shellUnbuilt;
  # The shell whose inputs pushShellInputs pushes, as mkShellHook makes it.
  innerShell = pkgs.mkShell shellInputs;

  files = builtins.derivation {
    name = "cachix-select-test-snippets";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    inherit hm nixos shell;
    manifest = "${manifest}";
    generation = "${generation}";
    nixosExec = nixosUnit.serviceConfig.ExecStart;
    nixosCreds = builtins.concatStringsSep "\n" nixosUnit.serviceConfig.LoadCredential;
    nixosSuccess = nixosUnit.serviceConfig.SuccessExitStatus;
    nixosType = nixosUnit.serviceConfig.Type;
    # nixpkgs renders restartIfChanged = false as X-RestartIfChanged=false.
    nixosRestartIfChanged = if nixosUnit.restartIfChanged or true then "yes" else "no";
    hmExec = hmUnit.Service.ExecStart;
    args = [
      "-c"
      ''
        set -e
        mkdir "$out"
        ln -s "$manifest" "$out/manifest.json"
        ln -s "$generation" "$out/generation"
        printf '%s' "$hm" > "$out/hm.sh"
        printf '%s' "$nixos" > "$out/nixos.sh"
        printf '%s' "$shell" > "$out/shell.sh"
        printf '%s' "$nixosExec" > "$out/nixos-unit.exec"
        printf '%s' "$nixosCreds" > "$out/nixos-unit.creds"
        printf '%s' "$nixosSuccess" > "$out/nixos-unit.success"
        printf '%s' "$nixosType" > "$out/nixos-unit.type"
        printf '%s' "$nixosRestartIfChanged" > "$out/nixos-unit.restart-if-changed"
        printf '%s' "$hmExec" > "$out/hm-unit.exec"
      ''
    ];
  };

  # check compares the built manifest with the expected one; the result is
  # [] or a description of the difference.
  check =
    builtFile:
    let
      json = x: builtins.fromJSON (builtins.unsafeDiscardStringContext x);
      got = json (builtins.readFile builtFile);
      want = json (builtins.toJSON expected);
    in
    if got == want then
      [ ]
    else
      [
        "manifest differs"
        got
        want
      ];

  closure = [
    fixtures.app
    fixtures.exe
  ];
}

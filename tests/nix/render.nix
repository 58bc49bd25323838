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
  stateDir,
  mode ? "background",
  strict ? false,
  exe ? null,
}:
let
  pkgs = import ./stub-pkgs.nix { };
  pure = import ../../modules/lib.nix;
  pkg = builtins.storePath package;
  fixtures = import ../fixtures/closure.nix { inherit salt; };
  exe' = if exe != null then exe else "${pkg}/bin/cachix-select";

  cacheArgs = {
    inherit
      cacheUrl
      cacheName
      host
      authTokenFile
      ;
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
    }
  );

  hm = pure.homeManagerActivation {
    exe = exe';
    manifest = "${manifest}";
    inherit mode strict stateDir;
    systemdUnit = "cachix-select.service";
  };

  nixos = pure.nixosActivation {
    exe = exe';
    manifest = "${manifest}";
    inherit mode strict stateDir;
  };

  shell = import ../../modules/shell.nix { inherit pkgs; package = pkg; } (
    cacheArgs
    // {
      inherit stateDir mode strict;
      packages = [ fixtures.app ];
    }
  );

  # The expected manifest (design.md §3), for the comparison in `check`.
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
  inherit manifest fixtures;

  files = builtins.derivation {
    name = "cachix-select-test-snippets";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    inherit hm nixos shell;
    manifest = "${manifest}";
    args = [
      "-c"
      ''
        set -e
        mkdir "$out"
        ln -s "$manifest" "$out/manifest.json"
        printf '%s' "$hm" > "$out/hm.sh"
        printf '%s' "$nixos" > "$out/nixos.sh"
        printf '%s' "$shell" > "$out/shell.sh"
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

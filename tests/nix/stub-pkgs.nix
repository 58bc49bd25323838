# A minimal stand-in for nixpkgs, built from builtins only, with what the
# modules and the flake take from pkgs: writeTextFile / writeText (real
# derivations with /bin/sh builders that run checkPhase, as nixpkgs' do),
# writeShellScriptBin, callPackage, mkShell and a buildGoModule that records its arguments.
{
  system ? builtins.currentSystem,
  # extra attributes, seen by callPackage too (a fake package, say)
  extra ? { },
}:
let
  self = {
    inherit system;
    stdenv.hostPlatform.system = system;

    # Same interface and shell-visible behaviour as nixpkgs' writeTextFile
    # for the cases used here: $out is the file, then checkPhase runs.
    writeTextFile =
      {
        name,
        text,
        executable ? false,
        checkPhase ? "",
        ...
      }:
      builtins.derivation {
        inherit name text checkPhase system;
        executable = if executable then "1" else "";
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [
          "-c"
          ''
            set -e
            target="$out"
            printf '%s' "$text" > "$target"
            if [ -n "$executable" ]; then chmod +x "$target"; fi
            eval "$checkPhase"
          ''
        ];
      };

    writeText = name: text: self.writeTextFile { inherit name text; };

    writeShellScriptBin =
      name: text:
      builtins.derivation {
        inherit name text system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [
          "-c"
          ''
            mkdir -p "$out/bin"
            printf '#!/bin/sh\n%s\n' "$text" > "$out/bin/$name"
            chmod +x "$out/bin/$name"
          ''
        ];
      };

    # callPackage passes the arguments a function asks for from this set.
    callPackage =
      fn: overrides:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) self // overrides);

    # mkShell is nixpkgs' in shape: packages join nativeBuildInputs, the
    # inputs of inputsFrom are merged in (not the derivations themselves),
    # and the shell is a real derivation whose inputs are its build inputs.
    mkShell =
      {
        name ? "nix-shell",
        packages ? [ ],
        inputsFrom ? [ ],
        buildInputs ? [ ],
        nativeBuildInputs ? [ ],
        ...
      }@args:
      let
        merged = attr: builtins.concatMap (d: d.${attr} or [ ]) inputsFrom;
      in
      builtins.derivation (
        removeAttrs args [ "packages" "inputsFrom" ]
        // {
          inherit name system;
          buildInputs = buildInputs ++ merged "buildInputs";
          nativeBuildInputs = packages ++ nativeBuildInputs ++ merged "nativeBuildInputs";
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          args = [
            "-c"
            ''echo "$buildInputs $nativeBuildInputs" > "$out"''
          ];
        }
      );

    buildGoModule = args: args // { isGoModule = true; };
  }
  // extra;
in
self

# Unit tests of modules/lib.nix, evaluated by plain nix-instantiate (no
# nixpkgs). The result is the list of failures: [] means every case passed.
# `quoting` is a shell script (see tests/nix/run) that checks the shell
# quoting for real, with bash.
let
  l = import ../../modules/lib.nix;

  # case compares a result with what is expected.
  case =
    name: got: want:
    if got == want then
      null
    else
      "${name}: got ${builtins.toJSON got}, want ${builtins.toJSON want}";

  # fails tells whether evaluating x throws.
  fails = x: !(builtins.tryEval (builtins.deepSeq x x)).success;

  # contains tells whether one of the strings contains the text.
  contains = text: strings: builtins.any (s: builtins.match ".*${text}.*" s != null) strings;

  sd = builtins.storeDir;
  h = c: builtins.concatStringsSep "" (builtins.genList (_: c) 32);
  pkg = name: pname: extra: {
    inherit name;
    outPath = "${sd}/${h "a"}-${name}";
    system = "x86_64-linux";
  }
  // (if pname == null then { } else { inherit pname; })
  // extra;
  neovim = pkg "neovim-0.11.0" "neovim" { };
  neovim2 = neovim // {
    outPath = "${sd}/${h "b"}-neovim-0.11.0";
  };
  hello = pkg "hello-2.12.1" null { } // {
    outPath = "${sd}/${h "c"}-hello-2.12.1";
  };
  opensslDev = pkg "openssl-3.0.0" "openssl" {
    outputs = [
      "bin"
      "out"
      "dev"
    ];
    outputName = "dev";
    outPath = "${sd}/${h "d"}-openssl-3.0.0-dev";
  };

  valid = {
    cacheName = "mycache";
    authTokenFile = "/run/secrets/cachix-token";
    packages = [ neovim ];
  };

  m = l.manifest {
    cacheName = "mycache";
    host = "https://cachix.example.com";
    authTokenFile = "/run/secrets/token";
    packages = [
      neovim
      hello
      neovim
      opensslDev
    ];
    pin = {
      enable = true;
      prefix = "laptop";
      keep.revisions = 3;
      names.hello = "my-hello";
    };
    push = {
      jobs = 4;
      compression = null;
      compressionLevel = 9;
    };
    origin = "home-manager";
  };

  args = l.activateArgs;

  # A real derivation (never built) for pushInputsOf and pushShellInputs,
  # and a stand-in mkShell that records what it was given.
  drv = derivation {
    name = "dev-shell";
    system = "x86_64-linux";
    builder = "/bin/sh";
  };
  # hookManifestWith is the manifest a shellHook would write, with the
  # given mkShell: writeTextFile returns the manifest's text, which the
  # hook quotes as its manifest "path".
  hookManifestWith =
    mkShell: hookArgs:
    let
      hook = l.mkShellHook {
        writeTextFile = f: f.text;
        package = "/x";
        inherit mkShell;
      } hookArgs;
      m = builtins.match ".*'([{].*[}])'.*" hook;
    in
    if m == null then throw "no manifest in ${hook}" else builtins.fromJSON (builtins.head m);
  # A mkShell that makes drv when given the expected arguments.
  mkShellExpecting = want: a: if a == want then drv else throw "mkShell got ${builtins.toJSON a}";
  hookManifest = hookManifestWith (mkShellExpecting { packages = [ hello ]; });
  shellManifest = hookManifest;
in
{
  failures = builtins.filter (x: x != null) [
    (case "escape plain word" (l.escapeShellArg "/nix/store/x-y/bin/cachix-select") "/nix/store/x-y/bin/cachix-select")
    (case "escape space" (l.escapeShellArg "a b") "'a b'")
    (case "escape quote" (l.escapeShellArg "it's") "'it'\\''s'")
    (case "escape empty" (l.escapeShellArg "") "''")
    (case "escape dollar" (l.escapeShellArg "$HOME") "'$HOME'")
    (case "escape assignment-looking word" (l.escapeShellArg "A=b") "'A=b'")
    (case "escapeShellArgs" (l.escapeShellArgs [ "a" "b c" ]) "a 'b c'")

    (case "runtime path ok" (l.isRuntimePath "/run/secrets/cachix-token") true)
    (case "runtime path relative" (l.isRuntimePath "secrets/token") false)
    (case "runtime path in store" (l.isRuntimePath "${sd}/${h "e"}-token") false)
    (case "runtime path is a Nix path" (l.isRuntimePath ./lib-test.nix) false)
    (case "runtime path with context" (l.isRuntimePath "${builtins.toFile "token" "secret"}") false)
    (case "problem for a Nix path" (contains "path literal copies the secret" [
      (l.runtimePathProblem "cachix.authTokenFile" ./lib-test.nix)
    ]) true)
    (case "problem for a store path" (contains "inside the Nix store" [
      (l.runtimePathProblem "cachix.authTokenFile" "${sd}/${h "e"}-token")
    ]) true)
    (case "no problem for null" (l.runtimePathProblem "x" null) null)

    (case "name from pname" (l.nameOf neovim) "neovim")
    (case "name without pname" (l.nameOf hello) "hello")
    (case "name of a non-default output" (l.nameOf opensslDev) "openssl-dev")
    (case "name of a bare store path" (l.nameOf "${sd}/${h "f"}-hello-2.12.1") "hello")
    (case "pin name" (l.pinName {
      prefix = "laptop";
      system = "x86_64-linux";
      name = "neovim";
    }) "laptop-x86_64-linux-neovim")
    (case "a store-path string's pin takes the host system (pin.hostSystem, from the module)" (map (e: e.pin.name) (l.entries {
      packages = [ neovim.outPath neovim2 ];
      pin = { enable = true; prefix = "laptop"; hostSystem = "aarch64-linux"; };
    })) [ "laptop-aarch64-linux-neovim" "laptop-x86_64-linux-neovim" ])
    (case "fromOptions gives the host system to the pins" (l.fromOptions {
      cfg = { enable = true; package = "/p"; pushPackages = [ ]; pushBuildClosures = [ ]; pushGeneration = false;
        pin = { enable = true; prefix = "p"; }; timeout = "10m"; cacheName = "c"; authTokenFile = "/run/t"; };
      pkgs.stdenv.hostPlatform.system = "riscv64-linux";
    }).manifestArgs.pin.hostSystem "riscv64-linux")
    (case "pin name without prefix" (l.pinName {
      prefix = null;
      system = "x86_64-linux";
      name = "neovim";
    }) "x86_64-linux-neovim")

    (case "manifest" m {
      version = 1;
      cache = {
        name = "mycache";
        host = "https://cachix.example.com";
        url = null;
        authTokenFile = "/run/secrets/token";
        signingKeyFile = null;
      };
      paths = [
        {
          name = "neovim";
          storePath = neovim.outPath;
          pin = {
            name = "laptop-x86_64-linux-neovim";
            keep.revisions = 3;
          };
        }
        {
          name = "hello";
          storePath = hello.outPath;
          pin = {
            name = "my-hello";
            keep.revisions = 3;
          };
        }
        {
          name = "openssl-dev";
          storePath = opensslDev.outPath;
          pin = {
            name = "laptop-x86_64-linux-openssl-dev";
            keep.revisions = 3;
          };
        }
      ];
      push = {
        jobs = 4;
        compressionLevel = 9;
        omitDeriver = false;
      };
      origin = "home-manager";
    })
    (case "manifest without pins, plain cache" (l.manifest {
      cacheUrl = "file:///srv/cache";
      packages = [ hello ];
    }) {
      version = 1;
      cache = {
        name = null;
        host = null;
        url = "file:///srv/cache";
        authTokenFile = null;
        signingKeyFile = null;
      };
      paths = [
        {
          name = "hello";
          storePath = hello.outPath;
        }
      ];
      push.omitDeriver = false;
      origin = "manual";
    })
    (case "manifest JSON keeps the store paths' context" (builtins.hasContext (l.manifestJSON {
      cacheName = "c";
      packages = [ "${builtins.toFile "some-file" "x"}" ];
    })) true)

    (case "renderManifest throws a path-literal secret instead of copying it into the store" (fails (l.renderManifest (valid // { authTokenFile = ./lib-test.nix; }))) true)
    (case "renderManifest throws a missing cache" (fails (l.renderManifest { packages = [ neovim ]; })) true)
    (case "renderManifest renders what problems accepts" (builtins.fromJSON (l.renderManifest valid)).cache.name "mycache")

    (case "selection: push.exclude and push.upstream, defaults left out" (l.manifest (valid // {
      push = {
        exclude = {
          names = [ "*-doc" ];
          regex = [ ];
          maxNarSize = "500M";
          mode = "prune";
        };
        upstream = {
          filter = null;
          keys = [ "company-1" ];
        };
      };
    })).push {
      omitDeriver = false;
      exclude = {
        names = [ "*-doc" ];
        maxNarSize = "500M";
      };
      upstream.keys = [ "company-1" ];
    })
    (case "selection: upstream mode and the filter off" (l.manifest (valid // {
      push = {
        exclude = {
          regex = [ "-man$" ];
          mode = "upstream";
        };
        upstream.filter = false;
      };
    })).push {
      omitDeriver = false;
      exclude = {
        regex = [ "-man$" ];
        mode = "upstream";
      };
      upstream.filter = false;
    })
    (case "selection: nothing set, nothing rendered" (l.manifest (valid // {
      push.exclude = {
        names = [ ];
        regex = [ ];
        maxNarSize = null;
        mode = "prune";
      };
      push.upstream = {
        filter = null;
        keys = [ ];
      };
    })).push { omitDeriver = false; })
    (case "pushBuildClosures: closure build, once, pinned like the others" (l.manifest (valid // {
      packages = [ neovim hello ];
      pushBuildClosures = [ hello ];
      pin.enable = true;
    })).paths [
      {
        name = "neovim";
        storePath = neovim.outPath;
        pin.name = "x86_64-linux-neovim";
      }
      {
        name = "hello";
        storePath = hello.outPath;
        closure = "build";
        pin.name = "x86_64-linux-hello";
      }
    ])
    (case "pushInputsOf: the .drv with closure build, unpinned" (l.manifest (valid // {
      packages = [ ];
      pushInputsOf = [ drv drv ];
      pin.enable = true;
    })).paths [
      {
        name = "dev-shell-inputs";
        storePath = drv.drvPath;
        closure = "build";
      }
    ])
    (case "pushInputsOf: the manifest depends on the .drv only, not on its outputs" (builtins.getContext (l.manifestJSON (valid // {
      packages = [ ];
      pushInputsOf = [ drv ];
    }))) { ${builtins.unsafeDiscardStringContext drv.drvPath}.path = true; })
    (case "pushInputsOf: a store path is a problem" (contains "pushInputsOf takes derivations" (l.problems (valid // {
      pushInputsOf = [ neovim.outPath ];
    }))) true)
    (case "shell: pushShellInputs pushes mkShell shellInputs' .drv" (hookManifest {
      cacheName = "c";
      packages = [ neovim ];
      pushShellInputs = true;
      shellInputs.packages = [ hello ];
    }).paths [
      {
        name = "neovim";
        storePath = neovim.outPath;
      }
      {
        name = "dev-shell-inputs";
        storePath = drv.drvPath;
        closure = "build";
      }
    ])
    (case "shell: without shellInputs, the shell is mkShell { packages }" (map (p: p.storePath) (hookManifestWith (mkShellExpecting { packages = [ neovim ]; }) {
      cacheName = "c";
      packages = [ neovim ];
      pushShellInputs = true;
    }).paths) [ neovim.outPath drv.drvPath ])
    (case "shell: a shell derivation as shellInputs needs no mkShell" (hookManifestWith null {
      cacheName = "c";
      packages = [ ];
      pushShellInputs = true;
      shellInputs = drv;
    }).paths [
      {
        name = "dev-shell-inputs";
        storePath = drv.drvPath;
        closure = "build";
      }
    ])
    (case "shell: no shell inputs unless asked" (hookManifest {
      cacheName = "c";
      packages = [ neovim ];
    }).paths [
      {
        name = "neovim";
        storePath = neovim.outPath;
      }
    ])
    (case "shell: shellInputs without pushShellInputs is an error" (fails (shellManifest {
      cacheName = "c";
      packages = [ ];
      shellInputs.packages = [ hello ];
    })) true)
    (case "shell: shellInputs that is neither a set nor a derivation is an error" (fails (shellManifest {
      cacheName = "c";
      packages = [ ];
      pushShellInputs = true;
      shellInputs = [ hello ];
    })) true)
    (case "valid arguments have no problems" (l.problems valid) [ ])
    (case "both caches" (contains "only one of cachix.cacheName" (l.problems (valid // {
      prefix = "cachix.";
      cacheUrl = "file:///x";
    }))) true)
    (case "no cache" (contains "Set cacheName" (l.problems (valid // { cacheName = null; }))) true)
    (case "host with url" (contains "host is the Cachix API host" (l.problems (valid // {
      cacheName = null;
      cacheUrl = "file:///x";
      host = "https://h";
    }))) true)
    (case "token in the store" (contains "authTokenFile.*inside the Nix store" (l.problems (valid // {
      authTokenFile = "${sd}/${h "e"}-token";
    }))) true)
    (case "bad keep" (contains "pin.keep must be" (l.problems (valid // {
      pin = {
        enable = true;
        keep = {
          revisions = 1;
          days = 2;
        };
      };
    }))) true)
    (case "keep forever is fine" (l.problems (valid // {
      pin = {
        enable = true;
        keep = "forever";
      };
    })) [ ])
    (case "two paths, one pin name" (contains "Pin name \"x86_64-linux-neovim\" would be used by 2" (l.problems (valid // {
      packages = [
        neovim
        neovim2
      ];
      pin.enable = true;
    }))) true)
    (case "same path twice is one entry, no pin clash" (l.problems (valid // {
      packages = [
        neovim
        neovim
      ];
      pin.enable = true;
    })) [ ])
    (case "writeManifest throws the problems" (fails (l.writeManifest {
      writeTextFile = throw "not reached";
      package = "/x";
      cacheName = "a";
      cacheUrl = "file:///b";
      packages = [ ];
    })) true)

    (case "activate args, background with a unit" (args {
      exe = "cs";
      systemdUnit = "u.service";
      stateDir = "/s";
    }) [ "cs" "activate" "--mode" "background" "--systemd-unit" "u.service" "--state-dir" "/s" ])
    (case "activate args, foreground, strict" (args {
      exe = "cs";
      mode = "foreground";
      timeout = "5m";
      strict = true;
      systemdUnit = "u.service";
    }) [ "cs" "activate" "--mode" "foreground" "--timeout" "5m" "--strict" ])
    (case "shellHook: timeout 10m is fine" (fails (l.mkShellHook { writeTextFile = w: builtins.toFile w.name w.text; package = "/p"; } (valid // { timeout = "10m"; }))) false)
    (case "timeout: only zero durations" (map (d: l.timeoutProblem "t" d == null) [ "0s" "0m0s" "0.0s" "10m" "0.5s" "90s" "1h" ]) [ false false false true true true true ])
    (case "shellHook: timeout 0s throws" (fails (l.mkShellHook { writeTextFile = w: builtins.toFile w.name w.text; package = "/p"; } (valid // { timeout = "0s"; }))) true)
    (case "activate args, strict dry run: no --strict (a report never fails)" (args {
      exe = "cs";
      strict = true;
      dryRun = true;
    }) [ "cs" "activate" "--dry-run" ])
    (case "activate args, dry run" (args {
      exe = "cs";
      dryRun = true;
      systemdUnit = "u.service";
    }) [ "cs" "activate" "--dry-run" ])
    (case "activate args, NixOS background: the unit goes to the restart list" (args {
      exe = "cs";
      systemdUnit = "u.service";
      restartList = "/run/nixos/activation-restart-list";
      configFile = "/root/cachix.dhall";
    }) [ "cs" "activate" "--mode" "background" "--systemd-unit" "u.service" "--restart-list" "/run/nixos/activation-restart-list" "--config" "/root/cachix.dhall" ])
    (case "activate args, foreground: no unit, no restart list" (args {
      exe = "cs";
      mode = "foreground";
      systemdUnit = "u.service";
      restartList = "/r";
    }) [ "cs" "activate" "--mode" "foreground" "--timeout" "10m" ])
    (case "activate args, generation pin kept 3 revisions" (args {
      exe = "cs";
      generationPin = l.generationPin {
        pin = {
          enable = true;
          prefix = "laptop";
          keep.revisions = 3;
        };
        system = "x86_64-linux";
      };
    }) [ "cs" "activate" "--mode" "background" "--root-pin" "laptop-x86_64-linux-generation" "--root-keep-revisions" "3" ])
    (case "generation pin renamed, kept forever" (l.generationArgs (l.generationPin {
      pin = {
        enable = true;
        names.generation = "gen";
        keep = "forever";
      };
      system = "x86_64-linux";
    })) [ "--root-pin" "gen" "--root-keep-forever" ])
    (case "no generation pin without pin.enable" (l.generationPin { system = "x86_64-linux"; }) null)
    (case "the generation's pin must not clash" (contains "Pin name \"x86_64-linux-generation\" would be used by 2" (l.problems (valid // {
      packages = [ (pkg "generation-1" "generation" { outPath = "${sd}/${h "g"}-generation-1"; }) ];
      pin.enable = true;
      generationPin = l.generationPin {
        pin.enable = true;
        system = "x86_64-linux";
      };
    }))) true)
    (case "the generation goes as a quoted shell variable after its pin" (l.escapeShellArgs (args {
      exe = "cs";
      root = "systemConfig";
      generationPin.name = "gen";
    })) "cs activate --mode background --root-pin gen --root \"$systemConfig\"")
    (case "activate args: the secrets the manifest lacks go by path, the others stay in the manifest" (args {
      exe = "cs";
      authTokenFile = "/run/t";
      signingKeyFile = "/run/k";
      configFile = "/run/c.dhall";
      s3.credentialsFile = "/run/aws";
    }) [ "cs" "activate" "--mode" "background" "--config" "/run/c.dhall" "--s3-credentials-file" "/run/aws" ])
    (case "flush args with credentials" (l.flushArgs {
      exe = "cs";
      stateDir = "/var/lib/cachix-select";
      credentials = true;
      authTokenFile = "/run/secrets/t";
      signingKeyFile = "/run/secrets/k";
      configFile = "/root/c.dhall";
    }) [ "cs" "queue" "flush" "--fail-fast" "--state-dir" "/var/lib/cachix-select" "--auth-token-file" { systemdSpecifier = "%d/auth-token"; } "--signing-key-file" { systemdSpecifier = "%d/signing-key"; } "--config" { systemdSpecifier = "%d/cachix-config"; } ])
    (case "flush args with the S3 credentials as a credential" (l.flushArgs {
      exe = "cs";
      credentials = true;
      s3.credentialsFile = "/run/secrets/aws";
    }) [ "cs" "queue" "flush" "--fail-fast" "--s3-credentials-file" { systemdSpecifier = "%d/s3-credentials"; } ])
    (case "LoadCredential= for every secret, in the table's order" (l.loadCredentials {
      s3.credentialsFile = "/run/a%ws";
      configFile = "/run/c";
      authTokenFile = "/run/t";
    }) [ "auth-token:/run/t" "cachix-config:/run/c" "s3-credentials:/run/a%%ws" ])
    (case "every secret option has a flag and a distinct credential name" (
      builtins.length (builtins.filter (s: builtins.match "--[a-z0-9-]+" s.flag != null) l.secretOptions) == builtins.length l.secretOptions
      && builtins.length (builtins.attrNames (builtins.listToAttrs (map (s: { name = s.credential; value = 1; }) l.secretOptions))) == builtins.length l.secretOptions
    ) true)
    (case "flush args with a config file by path" (l.flushArgs {
      exe = "cs";
      configFile = "/home/a/c.dhall";
    }) [ "cs" "queue" "flush" "--fail-fast" "--config" "/home/a/c.dhall" ])
    (case "systemd: plain words are quoted" (l.escapeSystemdExecArgs [ "/nix/store/x/bin/cs" "queue" ]) ''"/nix/store/x/bin/cs" "queue"'')
    (case "systemd: % and $ doubled in arguments, % only in the executable" (l.escapeSystemdExecArgs [ "/a%b$c/cs" "%h$HOME" ]) ''"/a%%b$c/cs" "%%h$$HOME"'')
    (case "systemd: quotes, backslashes and newlines escaped" (l.escapeSystemdExecArg "a\"b\\c\nd") ''"a\"b\\c\nd"'')
    (case "systemd: %d kept for credentials" (l.escapeSystemdExecArg (l.credentialPath "auth-token")) ''"%d/auth-token"'')
    (case "systemd: a relative executable is refused" (fails (l.escapeSystemdExecArgs [ "cs" ])) true)
    (case "systemd: an executable with a quote is refused" (fails (l.escapeSystemdExecArgs [ "/a'b/cs" ])) true)
    (case "systemd: LoadCredential paths keep $ and double %" (l.escapeSystemdSpecifiers "/run/a%b$c") "/run/a%%b$c")
    (case "NixOS Cachix background without a token source fails" (contains "cannot find a token by itself.*cachix.authTokenFile.*cachix.configFile" [
      (l.nixosTokenProblem { cacheName = "c"; })
    ]) true)
    (case "NixOS: a token file is enough" (l.nixosTokenProblem {
      cacheName = "c";
      authTokenFile = "/run/t";
    }) null)
    (case "NixOS: a config file is enough" (l.nixosTokenProblem {
      cacheName = "c";
      configFile = "/run/c.dhall";
    }) null)
    (case "NixOS: foreground needs no unit token" (l.nixosTokenProblem {
      cacheName = "c";
      mode = "foreground";
    }) null)
    (case "NixOS: a plain cache needs no token" (l.nixosTokenProblem { }) null)
    (case "config file in the store" (contains "configFile.*inside the Nix store" (l.problems (valid // {
      configFile = "${sd}/${h "e"}-cachix.dhall";
    }))) true)
    (case "S3 credentials in the store" (contains "s3.credentialsFile.*inside the Nix store" (l.problems (valid // {
      cacheName = null;
      cacheUrl = "s3://bucket";
      s3.credentialsFile = "${sd}/${h "e"}-aws";
    }))) true)
    (case "S3 credentials with a Cachix cache" (contains "cachix.s3.credentialsFile is the AWS credentials file of an s3:// cache, but the cache is the Cachix cache cachix.cacheName" (l.problems (valid // {
      prefix = "cachix.";
      s3.credentialsFile = "/run/secrets/aws";
    }))) true)
    (case "S3 credentials with a file:// cache" (contains "s3.credentialsFile is the AWS credentials file of an s3:// cache, but cacheUrl is file:///x" (l.problems (valid // {
      cacheName = null;
      cacheUrl = "file:///x";
      s3.credentialsFile = "/run/secrets/aws";
    }))) true)
    (case "S3 credentials with an s3:// cache are fine" (l.problems (valid // {
      cacheName = null;
      cacheUrl = "s3://bucket?region=eu-west-1";
      s3.credentialsFile = "/run/secrets/aws";
    })) [ ])
    (case "the manifest has no field for the config or S3 credentials file" (l.manifest {
      cacheUrl = "s3://bucket";
      configFile = "/run/c";
      s3.credentialsFile = "/run/secrets/aws";
    }).cache { name = null; host = null; url = "s3://bucket"; authTokenFile = null; signingKeyFile = null; })
    (case "a misspelt manifest argument is an error" (fails (l.manifest { cachName = "x"; })) true)
    (case "a misspelt secret is an error too" (fails (l.problems (valid // { s3CredentialsFile = "/run/aws"; }))) true)
    (case "NixOS S3 background without credentials fails" (contains "s3.credentialsFile" [
      (l.nixosTokenProblem { cacheUrl = "s3://b"; })
    ]) true)
    (case "NixOS: an S3 credentials file is enough" (l.nixosTokenProblem {
      cacheUrl = "s3://b";
      s3.credentialsFile = "/run/aws";
    }) null)
    (case "NixOS: a file cache's directory" (map l.fileCacheDir [ "file:///srv/c?compression=zstd" "file:///srv/c" "s3://b" null ]) [ "/srv/c" "/srv/c" null null ])
    (case "NixOS: the unit may write a file cache under /srv" (l.nixosService {
      exe = "/x"; stateDir = "/var/lib/c"; unit = "c"; nixPackage = "/n"; cacheUrl = "file:///srv/c?compression=zstd";
    }).serviceConfig.ReadWritePaths [ "-/srv/c" ])
    (case "NixOS: a file cache in a home is bound through ProtectHome=tmpfs" (let u = (l.nixosService {
      exe = "/x"; stateDir = "/var/lib/c"; unit = "c"; nixPackage = "/n"; cacheUrl = "file:///root/c";
    }).serviceConfig; in [ u.ProtectHome u.BindPaths (u ? ReadWritePaths) ]) [ "tmpfs" [ "-/root/c" ] false ])
    (case "NixOS: a Cachix cache leaves the unit read-only" ((l.nixosService {
      exe = "/x"; stateDir = "/var/lib/c"; unit = "c"; nixPackage = "/n"; authTokenFile = "/run/t";
    }).serviceConfig ? ReadWritePaths) false)
    (case "NixOS: a file cache under /tmp is refused (the unit's /tmp is its own)" (contains "PrivateTmp" [ (l.nixosCacheDirProblem { cacheUrl = "file:///tmp/c"; }) ]) true)
    (case "NixOS: a file cache under /var/tmp is refused" (l.nixosCacheDirProblem { cacheUrl = "file:///var/tmp"; } != null) true)
    (case "NixOS: a file cache under /tmp is fine in foreground without retries" (l.nixosCacheDirProblem { cacheUrl = "file:///tmp/c"; mode = "foreground"; }) null)
    (case "NixOS: a file cache under /tmp is refused in foreground with retries" (l.nixosCacheDirProblem { cacheUrl = "file:///tmp/c"; mode = "foreground"; retryInterval = "1h"; } != null) true)
    (case "NixOS: a file cache path with a space is refused" (l.nixosCacheDirProblem { cacheUrl = "file:///srv/a b"; } != null) true)
    (case "NixOS: /srv and /tmpfoo are fine" (map (u: l.nixosCacheDirProblem { cacheUrl = u; }) [ "file:///srv/c" "file:///tmpfoo/c" "https://x" ]) [ null null null ])
    (case "NixOS: a file cache needs no S3 credentials" (l.nixosTokenProblem { cacheUrl = "file:///x"; }) null)
  ];

  # Strings that must survive escapeShellArg unchanged through bash: each
  # is written to a file and compared with what bash makes of the quoted
  # word.
  quoting =
    let
      strings = [
        ""
        "plain"
        "with space"
        "it's"
        "'''"
        "$HOME"
        "\${HOME}"
        "$(echo pwned)"
        "`echo pwned`"
        "a\"b"
        "back\\slash"
        "new\nline"
        "tab\there"
        "*"
        "semi;colon && rm -rf /nonexistent"
        "~user"
        "--flag"
        "!event"
        "A=b"
      ];
      check =
        i: s:
        let
          file = builtins.toFile "quoting-case-${toString i}" s;
        in
        "printf '%s' ${l.escapeShellArg s} | cmp -s - ${file} || echo 'quoting case ${toString i} differs: see ${file}'";
    in
    builtins.concatStringsSep "\n" (builtins.genList (i: check i (builtins.elemAt strings i)) (builtins.length strings));
}

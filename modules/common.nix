# The part of the home-manager and NixOS modules that they share: the
# `cachix.*` options, the manifest and the assertions. Each of the two
# imports it with what differs,
#
#   imports = [ (import ./common.nix { origin = "nixos"; pinPrefix = …; pinPrefixText = …; }) ];
#
# and adds only its wiring: the activation entry and the units.
{
  # The manifest's origin: "home-manager" or "nixos".
  origin,
  # config -> the default of cachix.pin.prefix, and the Nix expression
  # the option's documentation shows for it.
  pinPrefix,
  pinPrefixText,
}:
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types literalExpression;
  cfg = config.cachix;
  pure = import ./lib.nix;
  settings = pure.fromOptions { inherit cfg pkgs; };

  # runtimePath is a secret's location, read by the binary at run time: a
  # string, because a Nix path value would copy the secret into the store.
  runtimePath = types.mkOptionType {
    name = "runtimePath";
    description = "absolute path outside the Nix store, given as a string (not a Nix path)";
    descriptionClass = "noun";
    check = pure.isRuntimePath;
    merge = lib.options.mergeEqualOption;
  };

  # nullOption declares an option that is null unless set.
  nullOption =
    type: example: description:
    mkOption {
      type = types.nullOr type;
      default = null;
      inherit example description;
    };

  # secretOption declares an option of modules/lib.nix's secretOptions.
  secretOption = nullOption runtimePath;

  # tokenOption documents the token and the key the same way; env is the
  # variable each falls back to.
  tokenOption =
    what: env: example:
    secretOption example ''
      Path of a file holding the ${what}, read by cachix-select when it
      pushes (at run time, never at evaluation). Give it as a string such
      as `"${example}"` (sops-nix, agenix): a Nix path like
      `./secret` is refused because it would copy the secret into the
      world-readable Nix store, and so is any path inside the store.
      When null, cachix-select falls back to `${"$"}${env}`, then to
      {option}`cachix.configFile` or `~/.config/cachix/cachix.dhall`.
    '';
in
{
  _file = ./common.nix;

  options.cachix = {
    enable = mkOption {
      type = types.bool;
      default = true;
      example = false;
      description = ''
        Whether to push {option}`cachix.pushPackages` (and
        {option}`cachix.pushBuildClosures`). On by default: the module does
        nothing until something is listed there (or
        {option}`cachix.pushGeneration` is set), so importing it is the
        opt-in. Set it to false to switch every push off on one
        machine (one without the token, say) and keep the package lists that
        other modules add.
      '';
    };

    pushPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = literalExpression "[ pkgs.neovim config.programs.emacs.finalPackage ]";
      description = ''
        Packages to push, each with its runtime closure, whenever the
        configuration is activated. Definitions from several modules are
        merged, so a module can add what it builds; a package listed twice is
        pushed once. Only paths the cache lacks are uploaded, and an
        activation with nothing new costs no network. The packages become
        part of the configuration's closure (the manifest refers to them, so
        they are built before activation).
      '';
    };

    pushBuildClosures = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = literalExpression "[ config.programs.emacs.finalPackage ]";
      description = ''
        Packages to push with their build closure: what building them
        needs (the runtime closures of their derivation's inputs, as
        nixpkgs' `inputDerivation` captures them) plus the packages
        themselves, so that another machine (a CI runner) can rebuild
        them, or build a variant, from the cache. Inputs that are not in
        the local store (garbage-collected, never fetched) are skipped and
        counted, never built. The derivations themselves are not pushed;
        a package whose derivation is gone from the store is pushed with
        its runtime closure, with a warning. A package listed here and in
        {option}`cachix.pushPackages` takes the build closure.
      '';
    };

    cacheName = nullOption types.str "mycache" ''
      Name of the Cachix cache to push to (`mycache` for
      `https://mycache.cachix.org`). Set exactly one of this and
      {option}`cachix.cacheUrl`.
    '';

    cacheUrl = nullOption types.str "file:///srv/nix-cache" ''
      URL of a plain Nix binary cache to push to instead of Cachix, such as
      `file:///srv/nix-cache` (its parent directory must exist) or an S3
      bucket, `s3://BUCKET?region=REGION` (with `endpoint=` for MinIO,
      R2 and the like; keys: {option}`cachix.s3.credentialsFile`). Set
      exactly one of this and {option}`cachix.cacheName`. On NixOS the
      hardened cachix-select.service may write a `file://` cache (always
      in background mode): the unit is given its directory (ReadWritePaths,
      or a bind mount under /home, /root and /run/user), which must exist
      by then (until it does, the push stays queued); one under /tmp or
      /var/tmp is refused, since the unit has its own.
    '';

    host = nullOption types.str "https://cachix.example.com" ''
      Cachix API host, for a self-hosted or enterprise Cachix. Null means
      `https://cachix.org`. Only with {option}`cachix.cacheName`.
    '';

    authTokenFile = tokenOption "Cachix auth token" "CACHIX_AUTH_TOKEN" "/run/secrets/cachix-token";

    signingKeyFile = tokenOption "signing key (Nix `name:base64` or Cachix's bare base64 form), for caches that you sign yourself" "CACHIX_SIGNING_KEY" "/run/secrets/cachix-signing-key";

    configFile = secretOption "/run/secrets/cachix.dhall" ''
      Path of a cachix.dhall (the file `cachix authtoken` writes), read by
      cachix-select when it pushes: its `authToken`, the `secretKey` of
      the cache's `binaryCaches` entry and its `hostname`, after
      {option}`cachix.authTokenFile` and {option}`cachix.signingKeyFile`
      and `$CACHIX_AUTH_TOKEN` / `$CACHIX_SIGNING_KEY`. Like them, a string
      read at run time, never a Nix path or a path in the store. On NixOS
      the system unit receives it as a systemd credential. Null: the
      default `~/.config/cachix/cachix.dhall` of the user who pushes
      (which the NixOS unit, running without a home directory, never
      sees).
    '';

    s3.credentialsFile = secretOption "/run/secrets/aws-credentials" ''
      Path of an AWS shared credentials file for an `s3://`
      {option}`cachix.cacheUrl`: INI, with `aws_access_key_id` and
      `aws_secret_access_key` under `[default]` (or under the profile the
      URL's `profile=` names). cachix-select reads it when it pushes
      (`--s3-credentials-file`), and, named explicitly, it wins over
      `$AWS_ACCESS_KEY_ID` / `$AWS_SECRET_ACCESS_KEY`. Like the other
      secrets, a string read at run time, never a Nix path or a path in
      the store. On NixOS the system unit receives it as a systemd
      credential, and a background push to an `s3://` cache needs it.
      Null: the AWS environment variables, then `~/.aws/credentials` (or
      `$AWS_SHARED_CREDENTIALS_FILE`) of the user who pushes, which the
      NixOS unit, running without a home directory or your environment,
      never sees.
    '';

    pushGeneration = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Whether to push the generation being activated too, with its
        closure: the home-manager generation or the NixOS system, so that
        another machine can substitute all of it (`nix copy --from`, or
        `nix-env --set` a pinned generation). It goes through the same queue
        as {option}`cachix.pushPackages` (which may then be empty), and with
        {option}`cachix.pin.enable` it is pinned as
        `<prefix>-<system>-generation` (`cachix.pin.names.generation`
        renames it). The generation is passed at activation time: the
        manifest cannot list it, since the manifest is part of it.
      '';
    };

    mode = mkOption {
      type = types.enum [
        "background"
        "foreground"
      ];
      default = "background";
      example = "foreground";
      description = ''
        `background`: activation only queues the push (milliseconds) and a
        systemd unit pushes it (NixOS: `cachix-select.service`, started by
        the switch once systemd has reloaded its units; home-manager: the
        user unit, or a detached process without user systemd). `foreground`: activation pushes before it goes on, for at
        most {option}`cachix.timeout`. Either way, what cannot be pushed now
        (offline, cache down) stays queued and is retried.
      '';
    };

    timeout = mkOption {
      type = types.strMatching "([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+";
      default = "10m";
      example = "2m30s";
      description = ''
        In foreground mode, how long activation may spend pushing (a Go
        duration: `90s`, `10m`, `1h`; not zero). What is left stays queued.
      '';
    };

    strict = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        Whether a failed push fails the activation. Off by default: a push
        that cannot happen is a warning and stays queued, and the switch goes
        on. With strictness on, a bad manifest, a secret file that cannot be
        read, a push that cannot be queued or (in foreground mode) a failed
        push makes the activation fail. Dry runs (home-manager's
        `--dry-run`, NixOS's `dry-activate`) only report, strict or not.
      '';
    };

    retryInterval = mkOption {
      type = types.nullOr types.str;
      default = "1h";
      example = "15min";
      description = ''
        How often a systemd timer retries the queued pushes (a systemd time
        span), counted from the end of the last try; also once 10 minutes
        after boot or login. Null: no timer, and queued pushes wait for the
        next activation or `cachix-select queue flush`.
      '';
    };

    pin = {
      enable = mkOption {
        type = types.bool;
        default = false;
        example = true;
        description = ''
          Whether to pin each pushed package in Cachix (only the package
          itself, not its closure), so that Cachix's garbage collection keeps
          it. Pin names are `<prefix>-<system>-<name>`, such as
          `laptop-x86_64-linux-neovim` (a store path given as a string takes
          the host's system), unless {option}`cachix.pin.names` says
          otherwise. Only for Cachix caches.
        '';
      };

      prefix = mkOption {
        type = types.nullOr types.str;
        default = pinPrefix config;
        defaultText = literalExpression pinPrefixText;
        example = "laptop";
        description = ''
          First part of the pin names. Null leaves it out
          (`x86_64-linux-neovim`).
        '';
      };

      keep = mkOption {
        type = types.nullOr (
          types.either (types.enum [ "forever" ]) (types.attrsOf types.ints.positive)
        );
        default = null;
        example = {
          revisions = 3;
        };
        description = ''
          How many versions of each pin Cachix keeps: `{ revisions = N; }`,
          `{ days = N; }` or `"forever"`. Null: Cachix's default.
        '';
      };

      names = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          neovim = "nvim-stable";
        };
        description = ''
          Pin names for single packages, by package name (its `pname`, with
          `-<output>` for a non-default output), replacing the default name;
          `generation` names the pin of {option}`cachix.pushGeneration`.
        '';
      };
    };

    push = {
      jobs = nullOption (types.ints.between 1 256) 4 "How many paths are uploaded at once. Null: 8.";

      compression = nullOption (types.enum [
        "zstd"
        "xz"
      ]) "xz" "Compression of the uploaded NARs. Null: the cache's preference, else zstd.";

      compressionLevel = nullOption (types.ints.between 0 16) 8 "Compression level (0-16 for zstd, 0-9 for xz). Null: 2.";

      omitDeriver = mkOption {
        type = types.bool;
        default = false;
        example = true;
        description = "Whether to keep secret which derivation built each path (the narinfo's Deriver field).";
      };

      exclude = {
        names = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [
            "*-doc"
            "source"
          ];
          description = ''
            Leave out the closure paths whose name (what follows
            `<hash>-`) matches one of these globs (`*`, `?`, `[…]`). What
            becomes of the paths that depend on them is
            {option}`cachix.push.exclude.mode`'s.
          '';
        };

        regex = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "-(doc|man|devdoc)$" ];
          description = "Leave out the closure paths whose whole store path matches one of these regular expressions (RE2 syntax).";
        };

        maxNarSize = mkOption {
          type = types.nullOr (types.either types.ints.positive (types.strMatching "[0-9]+[KMGTkmgt]?"));
          default = null;
          example = "500M";
          description = "Leave out the closure paths whose NAR is larger than this: bytes, or a number with K, M, G or T (powers of 1024, as in nix.conf). Null: no cap.";
        };

        mode = mkOption {
          type = types.enum [
            "prune"
            "upstream"
          ];
          default = "prune";
          example = "upstream";
          description = ''
            What becomes of a path that depends on a left-out one.
            `prune`: it is not pushed either, so the cache never holds a
            closure with a hole; a selected package pruned this way is
            reported as not pushed, and why, and is not retried at every
            activation. `upstream`: it is pushed, and the left-out paths
            are expected from another cache your machines also substitute
            from (cache.nixos.org, a company cache); the report names the
            references left to it. Cachix serves a narinfo only once its
            whole closure is in the cache or in cache.nixos.org, so with a
            Cachix cache `upstream` only suits paths cache.nixos.org has.
          '';
        };
      };

      upstream = {
        filter = mkOption {
          type = types.nullOr types.bool;
          default = null;
          example = false;
          description = ''
            Whether to leave out the paths that carry a signature by one of
            {option}`cachix.push.upstream.keys` (read from the local store,
            without network): they are in that upstream cache already, and
            the paths that depend on them are still pushed. Null: on for
            file:// and s3:// caches, off for Cachix, which leaves out what
            cache.nixos.org has on its own side.
          '';
        };

        keys = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "cache.nixos.org-1" "mycompany-cache-1" ];
          description = "The key names (not the keys) whose signatures mark a path as present upstream. Empty: `cache.nixos.org-1`. Setting keys turns the filter on for Cachix too.";
        };
      };
    };

    # mkPackageOption looks the default up in the set it is given: here
    # pkgs' cachix-select, or, when pkgs has none, an error that says what
    # to do (mkPackageOption's own would only say that it is missing).
    package =
      lib.mkPackageOption
        {
          cachix-select = pkgs.cachix-select or (throw ''
            cachix.package is not set and pkgs has no cachix-select. Import the module from the cachix-select
            flake (homeModules.default / nixosModules.default set it), add its overlays.default to nixpkgs,
            or set cachix.package yourself.'');
        }
        "cachix-select"
        {
          example = "inputs.cachix-select.packages.\${pkgs.stdenv.hostPlatform.system}.default";
          extraDescription = ''
            It checks the manifest while it is built and pushes it. The
            flake's modules (`nixosModules.default`, `homeModules.default`)
            default it to the flake's own build; without them, pkgs must
            have it (the flake's `overlays.default` adds it).
          '';
        };

    manifest = mkOption {
      type = types.package;
      readOnly = true;
      description = ''
        The rendered manifest (a JSON file in the store, checked by
        `cachix-select manifest check` while it is built). For CI:
        `nix build .#nixosConfigurations.HOST.config.cachix.manifest -o manifest.json`
        then `cachix-select push manifest.json`.
      '';
    };
  };

  config = lib.mkMerge [
    {
      cachix.manifest = pure.writeManifestUnchecked {
        inherit (pkgs) writeTextFile;
        inherit (cfg) package;
        args = settings.manifestArgs // { inherit origin; };
      };
    }
    (lib.mkIf settings.active { assertions = pure.assertions settings.problems; })
  ];
}

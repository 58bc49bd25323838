# A NixOS-like system generation and a home-manager generation for the
# systemd scenarios (tests/systemd/run), made from what our modules
# produce (modules/lib.nix) with builtins only, built inside the booted
# root by its nix-daemon:
#
#   $out/etc/systemd/system/   cachix-select.service, .timer and the
#                              timers.target.wants/ link (tests/systemd/units.nix)
#   $out/activate              the activation script: the "etc" snippet (this
#                              generation's units into /etc/systemd/system, as
#                              NixOS's /etc/static switch does) and our
#                              cachixSelect snippet, wrapped as nixpkgs'
#                              activation-script.nix wraps snippets
#   $out/home/                 the user's units (.config/systemd/user/) and
#                              home-manager's activation, `hm-activate`
#   $out/system-manifest.json, $out/home-manifest.json
#   $out/closure, $out/home-closure   the selected packages
#
# The arguments are what the scenarios vary, named after the module
# options they stand for (cachix.authTokenFile, cachix.configFile,
# cachix.pushGeneration, cachix.pin); the generation is checked as the
# NixOS module's assertions check it.
{
  package, # a store path holding bin/cachix-select
  salt,
  host, # the Cachix API host the caches live on
  cacheName ? null,
  cacheUrl ? null, # a plain binary cache (file://) for the system instead of cacheName
  homeCacheName ? cacheName,
  authTokenFile ? null, # root's token, passed to the unit by LoadCredential
  configFile ? null, # root's cachix.dhall, passed the same way
  pushGeneration ? false, # also push this generation ($systemConfig) itself
  pinPrefix ? null, # pins on (cachix.pin.enable) with this pin.prefix
  homeAuthTokenFile, # the user's token, read by the user's push
  homeDirectory, # the user's home (home.homeDirectory)
  retryInterval ? "1h",
  mode ? "background",
}:
let
  pkgs = import ../nix/stub-pkgs.nix { };
  pure = import ../../modules/lib.nix;
  units = import ./units.nix;
  pkg = builtins.storePath package;
  exe = "${pkg}/bin/cachix-select";
  unit = "cachix-select";
  stateDir = "/var/lib/cachix-select";

  pin =
    if pinPrefix == null then
      { }
    else
      {
        enable = true;
        prefix = pinPrefix;
      };
  # The module's pkgs.stdenv.hostPlatform.system.
  generationPin = pure.generationPin {
    inherit pin;
    system = builtins.currentSystem;
  };

  system = import ../fixtures/closure.nix { salt = "${salt}-system"; };
  home = import ../fixtures/closure.nix { salt = "${salt}-home"; };

  manifest =
    origin: cache: url: token: pin: packages:
    pure.writeManifest (
      {
        inherit (pkgs) writeTextFile;
        package = pkg;
        inherit packages origin pin;
      }
      // (
        if url != null then
          { cacheUrl = url; }
        else
          {
            cacheName = cache;
            inherit host;
            authTokenFile = token;
          }
      )
    );
  # The system's cache, as the cachix.* options set it.
  systemCache =
    if cacheUrl != null then
      { inherit cacheUrl; }
    else
      {
        inherit
          cacheName
          host
          authTokenFile
          configFile
          ;
      };
  systemManifest = manifest "nixos" cacheName cacheUrl authTokenFile pin [ system.app ];
  homeManifest = manifest "home-manager" homeCacheName null homeAuthTokenFile { } [ home.exe ];

  # The NixOS module's assertions (modules/nixos.nix).
  problems =
    pure.problems (
      systemCache
      // {
        prefix = "cachix.";
        inherit pin;
        packages = [ system.app ];
        generationPin = if pushGeneration then generationPin else null;
      }
    )
    ++ builtins.filter (p: p != null) [
      (pure.nixosTokenProblem (builtins.removeAttrs systemCache [ "host" ] // { inherit mode; }))
      (pure.nixosCacheDirProblem { inherit cacheUrl mode retryInterval; })
    ];

  # The NixOS module's units (modules/nixos.nix), nix.package and the
  # service path being the root's /usr.
  service = pure.nixosService (
    builtins.removeAttrs systemCache [ "cacheName" "host" ]
    // {
      inherit exe stateDir unit;
      nixPackage = "/usr";
    }
  );
  timer = pure.nixosTimer { inherit retryInterval; };

  snippet = pure.nixosActivation {
    inherit
      exe
      stateDir
      mode
      configFile
      pushGeneration
      generationPin
      ;
    manifest = "${systemManifest}";
    systemdUnit = "${unit}.service";
    path = [ "/usr/bin" ];
  };

  # The home-manager module's units (modules/home-manager.nix) and snippet.
  # config.xdg.stateHome is an absolute path when home-manager evaluates.
  hmStateDir = "${homeDirectory}/.local/state/cachix-select";
  hmService = pure.homeManagerService {
    inherit exe;
    stateDir = hmStateDir;
    nixPackage = "/usr";
  };
  hmTimer = pure.homeManagerTimer { inherit retryInterval; };
  hmSnippet = pure.homeManagerActivation {
    inherit exe mode;
    stateDir = hmStateDir;
    manifest = "${homeManifest}";
    systemdUnit = "${unit}.service";
    systemctlDir = "/usr/bin";
  };

  files = {
    "etc/systemd/system/${unit}.service" = units.nixosService { def = service; };
    "etc/systemd/system/${unit}.timer" = units.nixosTimer timer;
    "home/.config/systemd/user/${unit}.service" = units.homeManagerUnit hmService;
    "home/.config/systemd/user/${unit}.timer" = units.homeManagerUnit hmTimer;
  };
  links =
    map (l: "etc/systemd/system/${l}") (units.nixosLinks "${unit}.timer" timer)
    ++ map (l: "home/.config/systemd/user/${l}") (units.homeManagerLinks "${unit}.timer" hmTimer);

  # nixpkgs' activation-script.nix: PATH from the activation packages, an
  # ERR trap instead of -e, each snippet in its own frame.
  wrap = name: text: ''
    #### Activation script snippet ${name}:
    _localstatus=0
    ${text}
    if (( _localstatus > 0 )); then
      printf "Activation script snippet '%s' failed (%s)\n" "${name}" "$_localstatus"
    fi
  '';
  activate = ''
    #!/bin/bash
    systemConfig='@out@'
    export PATH=/empty
    for i in /usr; do PATH=$PATH:$i/bin:$i/sbin; done
    _status=0
    trap "_status=1 _localstatus=\$?" ERR
    umask 0022
    ${wrap "etc" ''
      # NixOS points /etc/static at the new generation; here the unit files are copied.
      mkdir -p /etc/systemd/system/timers.target.wants
      cp -fP "$systemConfig"/etc/systemd/system/${unit}.service "$systemConfig"/etc/systemd/system/${unit}.timer /etc/systemd/system/
      cp -fP "$systemConfig"/etc/systemd/system/timers.target.wants/${unit}.timer /etc/systemd/system/timers.target.wants/
    ''}
    ${wrap "cachixSelect" snippet}
    mkdir -p /run/nixos
    ln -sfn "$(readlink -f "$systemConfig")" /run/current-system
    exit $_status
  '';

  # home-manager's activation: writeBoundary has linked the files; then
  # reloadSystemd (daemon-reload, then start what is new and wanted by an
  # active target, as sd-switch does), then our entry, through `run`.
  hmActivate = ''
    #!/bin/bash
    set -eu
    set -o pipefail
    newGenPath='@out@/home'
    run() {
      if [[ $1 == --quiet || $1 == --silence ]]; then shift; fi
      if [[ -v DRY_RUN ]]; then echo "$@"; return 0; fi
      "$@"
    }
    # writeBoundary: home-manager links its files into the home directory.
    mkdir -p "$HOME/.config/systemd/user/timers.target.wants"
    for f in ${unit}.service ${unit}.timer timers.target.wants/${unit}.timer; do
      ln -sfn "$newGenPath/.config/systemd/user/$f" "$HOME/.config/systemd/user/$f"
    done
    # reloadSystemd
    export XDG_RUNTIME_DIR=''${XDG_RUNTIME_DIR:-/run/user/$UID}
    systemctl --user daemon-reload
    systemctl --user start ${unit}.timer
    ${hmSnippet}
    echo "home-manager activation went on"
  '';
in
assert problems == [ ] || throw ("cachix-select: " + builtins.concatStringsSep "\n" problems);
builtins.derivation {
  name = "cachix-select-machine-generation";
  system = builtins.currentSystem;
  builder = "/bin/bash";
  PATH = "/usr/bin:/bin";
  inherit activate hmActivate;
  systemManifest = "${systemManifest}";
  homeManifest = "${homeManifest}";
  closure = "${system.app}";
  homeClosure = "${home.exe}";
  inherit links;
  passAsFile = [ "activate" "hmActivate" ];
  args = [
    "-c"
    ''
      set -e
      write() { mkdir -p "$(dirname "$out/$1")"; printf '%s' "$2" > "$out/$1"; }
      ${builtins.concatStringsSep "\n" (
        map (n: "write ${pure.escapeShellArg n} ${pure.escapeShellArg files.${n}}") (builtins.attrNames files)
      )}
      for l in $links; do
        mkdir -p "$(dirname "$out/$l")"
        ln -s "../$(basename "$l")" "$out/$l"
      done
      sed "s|@out@|$out|g" "$activatePath" > "$out/activate"
      sed "s|@out@|$out|g" "$hmActivatePath" > "$out/home/hm-activate"
      chmod +x "$out/activate" "$out/home/hm-activate"
      ln -s "$systemManifest" "$out/system-manifest.json"
      ln -s "$homeManifest" "$out/home-manifest.json"
      echo "$closure" > "$out/closure"
      echo "$homeClosure" > "$out/home-closure"
    ''
  ];
}

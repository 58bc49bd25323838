# Renders the attribute sets our modules give systemd (modules/lib.nix:
# nixosService, nixosTimer, homeManagerService, homeManagerTimer) into unit
# files the way NixOS and home-manager do, with builtins only, so that a
# real systemd can run them in the tests.
#
# NixOS (nixpkgs' nixos/lib/systemd-lib.nix and systemd-unit-options.nix),
# for the keys our units use:
#   description                  -> [Unit] Description=
#   wants, after, before, requires, bindsTo, partOf, conflicts, requisite,
#   upholds, onFailure, onSuccess -> [Unit] Wants= After= ... (space-separated)
#   restartIfChanged, stopIfChanged, reloadIfChanged
#                                -> [Service] X-RestartIfChanged=false,
#                                   X-StopIfChanged=false (when false),
#                                   X-ReloadIfChanged=true (when true): where
#                                   switch-to-configuration reads them
#   unitConfig                   -> more [Unit] keys
#   environment, path            -> [Service] Environment="NAME=value" (JSON
#                                   quoting), one a line, sorted; PATH is the bin and sbin
#                                   directories of `path` plus the defaults
#                                   (NixOS: coreutils, findutils, gnugrep,
#                                   gnused, systemd; here the root's /usr)
#   serviceConfig, timerConfig   -> [Service] / [Timer]; a list is one line
#                                   per element, booleans true/false
#   wantedBy, requiredBy, upheldBy -> no [Install] section: symlinks in
#                                   <target>.wants/ (.requires/, .upholds/)
# Not rendered (our units set none): script/preStart/postStart wrappers,
# startAt, reloadTriggers, restartTriggers, aliases, overrideStrategy,
# confinement, LOCALE_ARCHIVE/TZDIR defaults.
#
# home-manager (modules/systemd.nix): the set is already by section
# (Unit/Service/Timer/Install); each section is written with
# lib.generators.toINI { listsAsDuplicateKeys = true; }: sections and keys
# sorted, a list is one line per element, booleans true/false.
# Install.WantedBy / RequiredBy also become <target>.wants/ (.requires/)
# symlinks, as home-manager links them.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    filter
    isBool
    isList
    map
    toString
    ;

  value = v: if isBool v then (if v then "true" else "false") else toString v;

  # key=value lines of one section; lists repeat the key.
  lines =
    attrs:
    concatLists (
      map (
        k:
        let
          v = attrs.${k};
        in
        if isList v then map (x: "${k}=${value x}") v else [ "${k}=${value v}" ]
      ) (attrNames attrs)
    );

  section = name: ls: if ls == [ ] then "" else "[${name}]\n" + concatStringsSep "\n" ls + "\n";

  # Space-separated dependency lists of [Unit] (systemd-lib.nix).
  unitLists = {
    wants = "Wants";
    requires = "Requires";
    requisite = "Requisite";
    bindsTo = "BindsTo";
    partOf = "PartOf";
    upholds = "Upholds";
    conflicts = "Conflicts";
    before = "Before";
    after = "After";
    onFailure = "OnFailure";
    onSuccess = "OnSuccess";
  };

  nixosUnitSection =
    def:
    let
      deps = filter (k: (def.${k} or [ ]) != [ ]) (attrNames unitLists);
    in
    lines (
      (if def ? description then { Description = def.description; } else { })
      // builtins.listToAttrs (
        map (k: {
          name = unitLists.${k};
          value = concatStringsSep " " def.${k};
        }) deps
      )
      // (def.unitConfig or { })
    );

  binPath = path: concatStringsSep ":" (map (p: "${p}/bin:${p}/sbin") path);

  # Where each NixOS install option links the unit.
  linkDirs = {
    wantedBy = "wants";
    requiredBy = "requires";
    upheldBy = "upholds";
  };

  links =
    name: byOption:
    concatLists (
      map (opt: map (target: "${target}.${linkDirs.${opt}}/${name}") (byOption.${opt} or [ ])) (
        attrNames linkDirs
      )
    );
in
rec {
  # nixosService NAME DEF: the text of NAME.service; defaultPath is the
  # root's stand-in for NixOS's default service path.
  nixosService =
    {
      def,
      defaultPath ? [ "/usr" ],
    }:
    let
      env =
        (def.environment or { })
        // {
          PATH = binPath ((def.path or [ ]) ++ defaultPath);
        };
    in
    section "Unit" (nixosUnitSection def)
    + "\n"
    + section "Service" (
      map (n: "Environment=${builtins.toJSON "${n}=${env.${n}}"}") (attrNames env)
      ++ lines (
        (def.serviceConfig or { })
        // (if (def.restartIfChanged or true) then { } else { X-RestartIfChanged = false; })
        // (if (def.stopIfChanged or true) then { } else { X-StopIfChanged = false; })
        // (if (def.reloadIfChanged or false) then { X-ReloadIfChanged = true; } else { })
      )
    );

  nixosTimer =
    def:
    section "Unit" (nixosUnitSection def) + "\n" + section "Timer" (lines (def.timerConfig or { }));

  # nixosLinks NAME DEF: the <target>.wants/NAME symlinks (relative paths
  # in the unit directory) NixOS makes instead of an [Install] section.
  nixosLinks = name: def: links name def;

  # homeManagerUnit DEF: the text of a home-manager user unit.
  homeManagerUnit =
    def: concatStringsSep "\n" (filter (s: s != "") (map (s: section s (lines def.${s})) (attrNames def)));

  homeManagerLinks =
    name: def:
    links name {
      wantedBy = def.Install.WantedBy or [ ];
      requiredBy = def.Install.RequiredBy or [ ];
    };
}

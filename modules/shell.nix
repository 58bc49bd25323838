# shellHook builder: pushes the given packages whenever the shell is
# entered, without ever delaying it.
#
#   pkgs.mkShell {
#     packages = [ myTool ];
#     shellHook = import ./modules/shell.nix { inherit pkgs package; } {
#       cacheName = "mycache";
#       packages = [ myTool ];
#     };
#   }
#
# The hook runs `cachix-select activate`, which returns at once: it prints
# nothing when the cache already has everything, else one line, and the
# push runs detached (one at a time per user, output appended to
# ~/.local/state/cachix-select/push.log). Offline pushes stay queued.
# configFile (a runtime path string, like authTokenFile) names a
# cachix.dhall other than ~/.config/cachix/cachix.dhall.
{ pkgs, package }:
{
  packages,
  cacheName ? null,
  cacheUrl ? null,
  host ? null,
  authTokenFile ? null,
  signingKeyFile ? null,
  configFile ? null,
  pin ? { },
  push ? { },
  mode ? "background",
  strict ? false,
  timeout ? "10m",
  stateDir ? null,
}:
let
  pure = import ./lib.nix;
  manifest = pure.writeManifest {
    inherit (pkgs) writeTextFile;
    inherit
      package
      packages
      cacheName
      cacheUrl
      host
      authTokenFile
      signingKeyFile
      pin
      push
      ;
    origin = "shell";
  };
  configProblem = pure.runtimePathProblem "configFile" configFile;
in
if configProblem != null then
  throw "cachix-select: ${configProblem}"
else
pure.shellHook {
  exe = "${package}/bin/cachix-select";
  manifest = "${manifest}";
  inherit
    mode
    strict
    timeout
    stateDir
    configFile
    ;
}

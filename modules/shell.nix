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
#
# The arguments are the `cachix.*` options of the same names: packages
# (like pushPackages), pushBuildClosures, cacheName, cacheUrl, host, pin,
# push (with push.exclude and push.upstream), mode, strict, timeout,
# stateDir and the secret files (runtime path strings)
# authTokenFile, signingKeyFile, configFile (a cachix.dhall other than
# ~/.config/cachix/cachix.dhall) and s3.credentialsFile (the AWS
# credentials file of an s3:// cacheUrl). pushInputsOf is the manifest's
# own: derivations whose inputs are pushed, without building them. And
# the shell's own: pushShellInputs = true also pushes the dev
# shell's input closure (what entering it on another machine needs),
# computed from shellInputs: the mkShell arguments that carry the inputs
# (default { inherit packages; }), or the shell itself made without this
# hook. The hook cannot see the mkShell it is given to, so give it the
# same inputs:
#
#   let inputs = { packages = [ myTool pkgs.go ]; inputsFrom = [ myTool ]; };
#   in pkgs.mkShell (inputs // {
#     shellHook = import ./modules/shell.nix { inherit pkgs package; } {
#       cacheName = "mycache";
#       packages = [ myTool ];
#       pushShellInputs = true;
#       shellInputs = inputs;
#     };
#   })
#
# Only this uses pkgs.mkShell; nothing of that shell is built: its .drv is
# read when pushing, and inputs not realised locally are skipped.
#
# modules/lib.nix (mkShellHook) lists them; an unknown one is an error
# that names it.
{ pkgs, package }:
{ packages, ... }@args:
(import ./lib.nix).mkShellHook {
  inherit (pkgs) writeTextFile;
  inherit package;
  mkShell = pkgs.mkShell or null;
} args

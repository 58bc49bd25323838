# The cachix-select package, for `pkgs.callPackage ./modules/package.nix { }`
# (the flake's packages, overlay and modules use it too).
{
  buildGoModule,
  version ? "0.1.0-pre",
}:
let
  root = toString ../.;

  # source keeps only what the Go build reads (go.mod, go.sum and the
  # non-test Go files of cmd/ and pushlib/), so editing docs, tests or Nix
  # code does not rebuild the package.
  source = builtins.path {
    name = "cachix-select-source";
    path = ../.;
    filter =
      path: type:
      let
        rel = builtins.substring (builtins.stringLength root + 1) (-1) (toString path);
        top = builtins.head (builtins.split "/" rel);
        base = baseNameOf rel;
        isGo = builtins.match ".*\\.go" base != null && builtins.match ".*_test\\.go" base == null;
      in
      if rel == "go.mod" || rel == "go.sum" then
        true
      else if top != "cmd" && top != "pushlib" then
        false
      else if type == "directory" then
        base != "testdata"
      else
        type == "regular" && isGo;
  };
in
buildGoModule {
  pname = "cachix-select";
  inherit version;
  src = source;

  # The NAR hash of `go mod vendor` run on `source`, as buildGoModule's
  # goModules derivation produces it. tests/nix/run recomputes it
  # (tests/nix/vendor-hash.sh) and fails when go.mod or go.sum changed
  # without this line: put the hash it prints here.
  vendorHash = "sha256-VwfyIcmJ2nyhfTVRuTm1+dh/Kk9L4XPkWXz0CGVKH0k=";

  subPackages = [ "cmd/cachix-select" ];
  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}"
  ];

  # The test suite needs a real Nix store and local servers, which the
  # build sandbox lacks; it runs in tests/run (CI) instead.
  doCheck = false;

  meta = {
    description = "Push selected Nix store paths and their closures to Cachix or a Nix binary cache";
    mainProgram = "cachix-select";
  };
}

# NixOS with cachix-select: `nixos-rebuild switch` queues the push of the
# selected packages and switch-to-configuration starts
# cachix-select.service, which pushes them, once it has reloaded systemd.
# Nothing happens at boot; `nixos-rebuild dry-activate` reports what would
# be pushed.
#
#   nixos-rebuild switch --flake .#laptop
#   journalctl -u cachix-select        # what was pushed
#   sudo cachix-select queue list      # what is still waiting
{
  description = "NixOS configuration that pushes selected packages with cachix-select";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    cachix-select = {
      url = "github:cachix-select/cachix-select";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { nixpkgs, cachix-select, ... }:
    {
      nixosConfigurations.laptop = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          cachix-select.nixosModules.default
          (
            { config, pkgs, ... }:
            {
              # Your hardware configuration goes here.
              boot.loader.grub.device = "nodev";
              fileSystems."/" = {
                device = "/dev/disk/by-label/nixos";
                fsType = "ext4";
              };
              system.stateVersion = "25.05";
              networking.hostName = "laptop";

              # A kernel you configure yourself takes an hour to build:
              # build it once, substitute it everywhere else.
              boot.kernelPackages = pkgs.linuxPackages_latest;

              cachix = {
                cacheName = "mycache";
                # Managed by sops-nix or agenix, or a root-only file. A
                # string: the systemd unit receives it as a credential; it
                # never enters the store or the unit's environment.
                authTokenFile = "/run/secrets/cachix-token";
                pushPackages = [ config.boot.kernelPackages.kernel ];
                # Pin it as laptop-x86_64-linux-linux, kept for 30 days.
                pin = {
                  enable = true;
                  keep.days = 30;
                };
                # Or a cachix.dhall holding the token (one of the two is
                # required: the unit has no home directory to look in):
                # configFile = "/run/secrets/cachix.dhall";
                # Or push to your own S3 bucket (AWS, or MinIO, R2, B2 with
                # endpoint=) instead of Cachix: drop cacheName and
                # authTokenFile, and give the unit the keys (an AWS
                # credentials file, passed by LoadCredential like the token):
                # cacheUrl = "s3://my-nix-cache?region=eu-west-1";
                # s3.credentialsFile = "/run/secrets/aws-credentials";
                # Push the whole system too, pinned as
                # laptop-x86_64-linux-generation:
                # pushGeneration = true;
                # mode = "foreground";  # push during the switch (10 min at most)
                # strict = true;        # let a failed push fail the switch
              };
            }
          )
        ];
      };
    };
}

{
  description = "ec-node: archive live MoQ broadcasts into a content-addressed store";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # go.mod asks for Go 1.26; use that toolchain where nixpkgs has it.
      ecNode = pkgs: pkgs.callPackage ./nixos/package.nix {
        buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule;
      };
    in
    {
      packages = forAll (pkgs: { default = ecNode pkgs; ec-node = ecNode pkgs; });

      nixosModules.ec-node = { pkgs, lib, ... }: {
        imports = [ ./nixos/module.nix ];
        services.every-channel.ec-node.archive.package = lib.mkDefault (ecNode pkgs);
      };
      nixosModules.default = self.nixosModules.ec-node;

      checks = forAll (pkgs: {
        archive = pkgs.testers.runNixOSTest (import ./nixos/tests/archive.nix { inherit self; });
      });
    };
}

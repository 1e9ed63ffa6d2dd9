# The ec-node toolkit. Built by buildGoModule from this checkout.
# Cannot be built on the development machine (no nixpkgs there); scripts/check-nix.sh
# recomputes vendorHash from `go mod vendor` and fails when this file is stale.
{ lib, buildGoModule }:
buildGoModule {
  pname = "ec-node";
  version = "0.1.0";
  src = lib.cleanSource ../.;
  vendorHash = "sha256-ly3ulhBPsjt0iI6RUqlDq2dz53H3N18+ooWE104ggD8=";
  subPackages = [ "cmd/ec-node" "cmd/ec-discover" "cmd/moq-sub" "cmd/cas-put" "cmd/manifest-append" ];
  env.CGO_ENABLED = 0;
  ldflags = [ "-s" "-w" ];
  meta = {
    description = "Archive live Media-over-QUIC broadcasts into a BLAKE3 content-addressed store";
    mainProgram = "ec-node";
    license = lib.licenses.mit;
  };
}

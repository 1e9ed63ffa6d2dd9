# The arguments the module passes to `ec-node systemd-units`, which renders the
# unit files (pkg/systemd is their only source). Kept apart from module.nix so
# that scripts/check-nix.sh can evaluate it with a stand-in lib and feed the very
# same arguments to the real binary.
{ lib, cfg, systemctl }:
let
  repeat = flag: values: lib.concatMap (v: [ flag v ]) values;
in
[
  "--ec-node" "${cfg.package}/bin/ec-node"
  "--user" cfg.user
  "--group" cfg.group
  "--output-dir" (if cfg.store == null then cfg.outputDir else cfg.store)
  "--manifest-dir" cfg.manifestDir
  "--mode" cfg.mode
  "--systemctl" systemctl
  "--directory" (if cfg.directoryUrl == null then "" else cfg.directoryUrl)
  "--relay-url" cfg.relayUrl
  "--poll-interval" "${toString cfg.pollInterval}s"
  "--grace" "${toString cfg.grace}s"
]
++ lib.optionals cfg.relayAnnounce [ "--relay-announce" cfg.relayUrl ]
++ lib.optionals (cfg.relayUrlOverride != null) [ "--relay-url-override" cfg.relayUrlOverride ]
++ lib.optionals (cfg.maxBroadcasts != null) [ "--max-broadcasts" (toString cfg.maxBroadcasts) ]
++ lib.optionals (cfg.protocol != "auto") [ "--protocol" cfg.protocol ]
++ lib.optional cfg.tlsDisableVerify "--tls-disable-verify"
++ lib.optionals (cfg.tlsFingerprint != null) [ "--tls-fingerprint" cfg.tlsFingerprint ]
++ lib.optionals (cfg.metricsListen != null) [ "--metrics-listen" cfg.metricsListen ]
++ repeat (if cfg.followCatalog then "--fallback-track" else "--track") cfg.tracks
++ repeat "--broadcast" cfg.broadcasts
++ repeat "--include" cfg.include
++ repeat "--exclude" cfg.exclude
++ lib.optionals (cfg.environmentFile != null) [ "--environment-file" cfg.environmentFile ]
++ lib.optionals (cfg.manifestShipInterval > 0) [ "--ship-interval" "${toString cfg.manifestShipInterval}s" ]
++ lib.optionals (cfg.shardHosts != [ ]) [
  "--shard-hosts" (builtins.concatStringsSep "," cfg.shardHosts)
  "--shard-self" cfg.shardSelf
  "--shard-replicas" (toString cfg.shardReplicas)
]
++ cfg.extraArgs

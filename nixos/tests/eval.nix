# Evaluates nixos/module.nix without nixpkgs, using the stand-in lib in
# stub-lib.nix, and checks option defaults and the settings that reach the units.
# Run by scripts/check-nix.sh:  nix-instantiate --eval --strict --json nixos/tests/eval.nix
# The result holds the `ec-node systemd-units` arguments of two configurations,
# which the script renders with the real binary and hands to systemd-analyze.
let
  lib = import ./stub-lib.nix;
  module = import ../module.nix;
  stubPkgs = {
    runCommand = name: env: script: { inherit name script; outPath = "/nix/store/stand-in-${name}"; };
    callPackage = _: _: throw "the package default is not evaluated here";
  };
  systemd = "/nix/store/stand-in-systemd";
  evalWith = settings:
    let
      declared = (module { config = throw "options must not depend on config"; lib = lib; pkgs = stubPkgs; }).options.services.every-channel.ec-node.archive;
      defaults = builtins.mapAttrs (_: o: o.default) (removeAttrs declared [ "package" ]);
      cfg = defaults // { enable = true; package = "/nix/store/stand-in-ec-node"; } // settings;
      config = { services.every-channel.ec-node.archive = cfg; systemd.package = systemd; };
    in
    {
      inherit declared defaults cfg;
      module = (module { inherit config lib; pkgs = stubPkgs; }).config;
      unitArgs = import ../unit-args.nix { inherit lib cfg; systemctl = "${systemd}/bin/systemctl"; };
    };

  plain = evalWith { };
  custom = evalWith {
    mode = "inprocess";
    directoryUrl = null;
    relayUrlOverride = "https://203.0.113.7:443/anon";
    tlsDisableVerify = true;
    protocol = "ietf";
    broadcasts = [ "la-nbc" "it's/odd name" ];
    include = [ "la-*" ];
    exclude = [ "la-test*" ];
    maxBroadcasts = 20;
    tracks = [ "video0.m4s" ];
    followCatalog = false;
    outputDir = "/tank/every-channel/archive";
    metricsListen = "127.0.0.1:9464";
    extraArgs = [ "--announce-wait" "1m" ];
  };
  sharded = evalWith {
    store = "s3://archive/site-a?endpoint=http://10.0.0.9:8333";
    environmentFile = "/run/secrets/ec-archive-s3.env";
    shardHosts = [ "a1" "a2" "a3" ];
    shardSelf = "a2";
    shardReplicas = 2;
    manifestShipInterval = 60;
  };

  assertionsHold = e: builtins.all (a: a.assertion) e.module.content.assertions;
  # nixos/serve.nix (archive.serve), evaluated on the plain archive settings.
  serveModule = import ../serve.nix;
  serveWith = archiveCfg: serveModule { config.services.every-channel.ec-node.archive = archiveCfg; inherit lib; pkgs = stubPkgs; };
  serveDeclared = (serveWith plain.cfg).options.services.every-channel.ec-node.archive.serve;
  serveDefaults = builtins.mapAttrs (_: o: o.default) serveDeclared;
  serve = (serveWith (plain.cfg // { serve = serveDefaults // { enable = true; listen = "[::]:8443"; extraArgs = [ "--log-format" "json" ]; }; })).config;
  serveUnit = serve.content.systemd.services.ec-archive-serve.serviceConfig;

  undocumented = builtins.filter (n: !(plain.declared.${n} ? description) || !(plain.declared.${n} ? default) && n != "enable")
    (builtins.attrNames plain.declared);
  required = [ "enable" "package" "outputDir" "manifestDir" "directoryUrl" "relayUrl" "relayUrlOverride" "pollInterval"
    "tracks" "followCatalog" "tlsDisableVerify" "tlsFingerprint" "protocol" "broadcasts" "include" "exclude" "user" "group" "extraArgs" ];
  has = list: x: builtins.elem x list;
  hasPair = list: a: b: builtins.any (i: builtins.elemAt list i == a && builtins.elemAt list (i + 1) == b)
    (builtins.genList (i: i) (builtins.length list - 1));

  checks = {
    "every required option is declared" = builtins.all (n: plain.declared ? ${n}) required;
    "every option has a default and a description" = undocumented == [ ];
    "enable defaults to false" = plain.defaults.enable == false;
    "tracks default to the deployed four" = plain.defaults.tracks == [ "catalog.json" "init.mp4" "video0.m4s" "audio0.m4s" ];
    "directory defaults to every.channel" = plain.defaults.directoryUrl == "https://every.channel/api/public-streams";
    "relayUrlOverride defaults to null" = plain.defaults.relayUrlOverride == null;
    "mode defaults to systemd" = plain.defaults.mode == "systemd";
    "module is inert when disabled" = plain.module._type == "if";
    "units come from ec-node systemd-units" =
      builtins.match ".*/nix/store/stand-in-ec-node/bin/ec-node systemd-units --write .*"
        (builtins.elemAt plain.module.content.systemd.packages 0).script != null;
    "target wanted by multi-user" = plain.module.content.systemd.targets.ec-archive.wantedBy == [ "multi-user.target" ];
    "both roots get a tmpfiles rule" = builtins.length plain.module.content.systemd.tmpfiles.rules == 2;
    "an s3 store replaces outputDir" = hasPair sharded.unitArgs "--output-dir" "s3://archive/site-a?endpoint=http://10.0.0.9:8333"
      && builtins.length sharded.module.content.systemd.tmpfiles.rules == 1;
    "manifest shipping passed" = hasPair sharded.unitArgs "--ship-interval" "60s" && !(has plain.unitArgs "--ship-interval");
    "environmentFile passed" = hasPair sharded.unitArgs "--environment-file" "/run/secrets/ec-archive-s3.env"
      && !(has plain.unitArgs "--environment-file");
    "shard options passed" = hasPair sharded.unitArgs "--shard-hosts" "a1,a2,a3" && hasPair sharded.unitArgs "--shard-self" "a2"
      && hasPair sharded.unitArgs "--shard-replicas" "2" && !(has plain.unitArgs "--shard-hosts");
    "shardSelf outside shardHosts fails an assertion" = assertionsHold sharded
      && !(assertionsHold (evalWith { shardHosts = [ "a1" ]; shardSelf = "a2"; }));
    "polkit rule only in systemd mode" = plain.module.content.security.polkit.enable.condition
      && !custom.module.content.security.polkit.enable.condition;
    "default args pass the four tracks as the no-catalog fallback" =
      hasPair plain.unitArgs "--fallback-track" "video0.m4s" && !(has plain.unitArgs "--track");
    "followCatalog = false archives exactly the tracks" =
      hasPair custom.unitArgs "--track" "video0.m4s" && !(has custom.unitArgs "--fallback-track");
    "default args use the directory" = hasPair plain.unitArgs "--directory" "https://every.channel/api/public-streams";
    "override reaches the supervisor" = hasPair custom.unitArgs "--relay-url-override" "https://203.0.113.7:443/anon";
    "null directory disables it" = hasPair custom.unitArgs "--directory" "";
    "static broadcasts passed" = hasPair custom.unitArgs "--broadcast" "it's/odd name";
    "metrics listen address passed only when set" =
      hasPair custom.unitArgs "--metrics-listen" "127.0.0.1:9464" && !(has plain.unitArgs "--metrics-listen");
    "protocol passed only when not auto" = hasPair custom.unitArgs "--protocol" "ietf" && !(has plain.unitArgs "--protocol");
    "tls flag passed" = has custom.unitArgs "--tls-disable-verify" && !(has plain.unitArgs "--tls-disable-verify");
    "extra args last" = builtins.elemAt custom.unitArgs (builtins.length custom.unitArgs - 1) == "1m";
    "assertions hold for both configurations" = assertionsHold plain && assertionsHold custom;
    "an http relayUrl fails an assertion" = !(assertionsHold (evalWith { relayUrl = "http://cdn.moq.dev/anon"; }));
    "raw QUIC relay URLs pass the assertions" =
      assertionsHold (evalWith { relayUrl = "moqt://cdn.moq.dev/anon"; relayUrlOverride = "moql://203.0.113.7:443/anon"; });
    "a wss relayUrlOverride fails an assertion" = !(assertionsHold (evalWith { relayUrlOverride = "wss://cdn.moq.dev/anon"; }));
    "a relayUrlOverride with a space fails an assertion" = !(assertionsHold (evalWith { relayUrlOverride = "https://a b/"; }));
    "a file directoryUrl fails an assertion" = !(assertionsHold (evalWith { directoryUrl = "file:///etc/passwd"; }));
    "serve: every option has a default and a description" =
      builtins.all (n: serveDeclared.${n} ? default && serveDeclared.${n} ? description) (builtins.attrNames serveDeclared);
    "serve: off by default, inert when disabled" = serveDefaults.enable == false && (serveWith plain.cfg).config._type == "if";
    "serve: listens on loopback by default" = serveDefaults.listen == "127.0.0.1:8080";
    "serve: serves the archive's roots by default" =
      serveDefaults.outputDir == plain.cfg.outputDir && serveDefaults.manifestDir == plain.cfg.manifestDir;
    "serve: ExecStart runs archive-serve with the settings, extra args last" = builtins.match
      "'/nix/store/stand-in-ec-node/bin/ec-node' 'archive-serve' '--listen' '\\[::]:8443' '--root' '/var/lib/every-channel/archive' '--manifest-dir' '/var/lib/every-channel/manifests' '--log-format' 'json'"
      serveUnit.ExecStart != null;
    "serve: roots read-only, nothing writable" = serveUnit.ProtectSystem == "strict"
      && serveUnit.ReadOnlyPaths == [ plain.cfg.outputDir plain.cfg.manifestDir ] && !(serveUnit ? ReadWritePaths);
    "serve: runs as the archive account, without capabilities" = serveUnit.User == "ec-archive" && serveUnit.CapabilityBoundingSet == "";
    "shell quoting survives a quote" = builtins.match ".*'it'\\\\''s/odd name'.*"
      (builtins.elemAt custom.module.content.systemd.packages 0).script != null;
  };
  failed = builtins.filter (n: !checks.${n}) (builtins.attrNames checks);
in
if failed != [ ] then throw "nixos/tests/eval.nix: failed checks: ${builtins.concatStringsSep "; " failed}"
else {
  passed = builtins.attrNames checks;
  plainArgs = plain.unitArgs;
  customArgs = custom.unitArgs;
  serveService = serveUnit;
  shardedArgs = sharded.unitArgs;
}

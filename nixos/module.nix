# services.every-channel.ec-node.archive: discover live broadcasts and archive
# each into the CAS (outputDir) and JSONL manifests (manifestDir), one
# ec-archive@<instance>.service per broadcast. See docs/nixos.md.
#
# The unit files are not written here: they are rendered at build time by
# `ec-node systemd-units` (pkg/systemd) from the arguments in unit-args.nix, so
# NixOS hosts and hosts using the printed units run the same text.
#
# Disabling the module removes the units; switch-to-configuration then stops
# ec-archive.target, ec-archive-auto.service and, through PartOf=, every worker.
# The CAS and the manifests are left untouched.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.every-channel.ec-node.archive;
  inherit (lib) mkOption mkEnableOption mkIf types;

  unitArgs = import ./unit-args.nix {
    inherit lib cfg;
    systemctl = "${config.systemd.package}/bin/systemctl";
  };

  managesUnits = cfg.mode == "systemd" && cfg.user != "root";

  units = pkgs.runCommand "ec-archive-units" { } ''
    mkdir -p $out/lib/systemd/system $out/share/polkit-1/rules.d
    ${cfg.package}/bin/ec-node systemd-units --write $out/lib/systemd/system ${lib.escapeShellArgs unitArgs}
    if [ -e $out/lib/systemd/system/50-ec-archive.rules ]; then
      mv $out/lib/systemd/system/50-ec-archive.rules $out/share/polkit-1/rules.d/
    fi
  '';
in
{
  imports = [ ./serve.nix ];

  options.services.every-channel.ec-node.archive = {
    enable = mkEnableOption "archiving of every live every.channel broadcast into a content-addressed store";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = "pkgs.callPackage ./package.nix { }";
      description = "The ec-node package (provides bin/ec-node).";
    };

    outputDir = mkOption {
      type = types.str;
      default = "/var/lib/every-channel/archive";
      example = "/tank/every-channel/archive";
      description = "CAS root: objects/blake3/<aa>/<hash>.bin. May be on another filesystem than manifestDir.";
    };

    store = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "s3://archive/site-a?endpoint=http://10.0.0.9:8333";
      description = "CAS in an S3-compatible bucket (s3://BUCKET[/PREFIX][?endpoint=URL&region=R], docs/cas-layout.md) instead of outputDir. Manifests stay in manifestDir.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/ec-archive-s3.env";
      description = "Environment file both services read (EnvironmentFile=), e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for store; keeps secrets out of the Nix store.";
    };

    shardHosts = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "archive-1" "archive-2" "archive-3" ];
      description = "Share discovered broadcasts among these archive hosts by rendezvous hashing (docs/discovery.md); every host lists the same names. Empty: archive all.";
    };

    shardSelf = mkOption {
      type = types.str;
      default = "";
      example = "archive-2";
      description = "This host's name in shardHosts.";
    };

    manifestShipInterval = mkOption {
      type = types.int;
      default = 0;
      description = "With store: seal new manifest lines into the bucket every this many seconds (docs/manifest.md, the RPO of a lost host); 0: off.";
    };

    shardReplicas = mkOption {
      type = types.int;
      default = 1;
      description = "Hosts archiving each broadcast when shardHosts is set (1 to the number of hosts).";
    };

    manifestDir = mkOption {
      type = types.str;
      default = "/var/lib/every-channel/manifests";
      description = "Root of the JSONL manifests (<broadcast>/<track>.jsonl).";
    };

    mode = mkOption {
      type = types.enum [ "systemd" "inprocess" ];
      default = "systemd";
      description = ''
        "systemd": one ec-archive@<instance>.service per broadcast, started by the
        supervisor (polkit lets it manage exactly those units). "inprocess": the
        supervisor runs the workers as goroutines.
      '';
    };

    directoryUrl = mkOption {
      type = types.nullOr types.str;
      default = "https://every.channel/api/public-streams";
      description = "Web directory of public streams to poll; null to rely on relayAnnounce or broadcasts only.";
    };

    relayUrl = mkOption {
      type = types.str;
      default = "https://cdn.moq.dev/anon";
      description = "Relay of the static broadcasts, and the relay whose announcements are used when relayAnnounce is set. https:// dials WebTransport, moqt:// or moql:// raw QUIC.";
    };

    relayAnnounce = mkOption {
      type = types.bool;
      default = false;
      description = "Discover broadcasts from relayUrl's own announcements instead of directoryUrl.";
    };

    relayUrlOverride = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://203.0.113.7:443/anon";
      description = "When set, subscribe to every discovered broadcast through this relay instead of the entry's relay_url (ECP-0073).";
    };

    pollInterval = mkOption {
      type = types.int;
      default = 30;
      description = "Discovery poll interval for public streams, in seconds.";
    };

    grace = mkOption {
      type = types.int;
      default = 120;
      description = "Seconds a broadcast may be missing from discovery before its worker is stopped.";
    };

    maxBroadcasts = mkOption {
      type = types.nullOr types.int;
      default = null;
      description = "Archive at most this many discovered broadcasts (null: no limit). Static broadcasts do not count.";
    };

    tracks = mkOption {
      type = types.listOf types.str;
      default = [ "catalog.json" "init.mp4" "video0.m4s" "audio0.m4s" ];
      description = "Tracks archived for a broadcast without a catalog.json (with followCatalog), or exactly the tracks archived for every broadcast (without).";
    };

    followCatalog = mkOption {
      type = types.bool;
      default = true;
      description = "Follow each broadcast's catalog.json to find its tracks, falling back to `tracks` when it has none. When false, archive exactly `tracks`.";
    };

    tlsDisableVerify = mkOption {
      type = types.bool;
      default = false;
      description = "DANGER: accept any relay certificate. Only for an IP-literal relayUrlOverride; prefer tlsFingerprint.";
    };

    protocol = mkOption {
      type = types.enum [ "auto" "moq-lite" "ietf" ];
      default = "auto";
      description = "Protocol family offered to the relay: auto (moq-lite, else IETF moq-transport draft-14), moq-lite, or ietf (draft-14 only, e.g. Cloudflare's relay network).";
    };

    tlsFingerprint = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Pin the relay certificate by the hex SHA-256 of its DER encoding.";
    };

    broadcasts = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "la-nbc" ];
      description = "Broadcasts on relayUrl archived regardless of discovery, include/exclude and maxBroadcasts.";
    };

    include = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "la-*" ];
      description = "Archive only discovered broadcasts whose name matches one of these glob patterns (\"*\" stops at \"/\"). Empty: all.";
    };

    exclude = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Skip discovered broadcasts whose name matches one of these glob patterns; wins over include.";
    };

    user = mkOption {
      type = types.str;
      default = "ec-archive";
      description = "Account the supervisor and the workers run as (created when left at the default).";
    };

    group = mkOption {
      type = types.str;
      default = "ec-archive";
      description = "Group of the archive account (created when left at the default).";
    };

    metricsListen = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "127.0.0.1:9464";
      description = "Serve Prometheus metrics of archive-auto on http://<address>/metrics (--metrics-listen; see docs/metrics.md). In mode \"systemd\" the supervisor serves its worker units' metrics too. null: no metrics.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--announce-wait" "1m" ];
      description = "Further flags of `ec-node systemd-units`, i.e. archive-auto and wt-archive flags, passed on to the units.";
    };
  };

  config = mkIf cfg.enable {
    # ec-node checks every setting (the same check as archive-auto's) when it
    # renders the units at build time, and a bad one fails the build with its
    # reason. These assertions only catch the commonest mistake earlier, at
    # evaluation, naming the option.
    assertions = [
      {
        assertion = cfg.shardHosts == [ ] || builtins.elem cfg.shardSelf cfg.shardHosts;
        message = "services.every-channel.ec-node.archive.shardSelf must be one of shardHosts, got \"${cfg.shardSelf}\"";
      }
    ] ++ map
      (o: {
        assertion = o.url == null || builtins.match o.pattern o.url != null;
        message = "services.every-channel.ec-node.archive.${o.option} must be an ${o.scheme} URL without spaces, got \"${toString o.url}\"";
      })
      [
        { option = "relayUrl"; url = cfg.relayUrl; scheme = "https://, moqt:// or moql://"; pattern = "(https|moqt|moql)://[^[:space:]]+"; }
        { option = "relayUrlOverride"; url = cfg.relayUrlOverride; scheme = "https://, moqt:// or moql://"; pattern = "(https|moqt|moql)://[^[:space:]]+"; }
        { option = "directoryUrl"; url = cfg.directoryUrl; scheme = "http(s)://"; pattern = "https?://[^[:space:]]+"; }
      ];

    systemd.packages = [ units ];
    systemd.targets.ec-archive.wantedBy = [ "multi-user.target" ];

    systemd.tmpfiles.rules = [
      "d ${cfg.manifestDir} 0750 ${cfg.user} ${cfg.group} -"
    ] ++ lib.optional (cfg.store == null) "d ${cfg.outputDir} 0750 ${cfg.user} ${cfg.group} -";

    users.users = mkIf (cfg.user == "ec-archive") {
      ec-archive = { isSystemUser = true; group = cfg.group; description = "ec-node archive"; };
    };
    users.groups = mkIf (cfg.group == "ec-archive") { ec-archive = { }; };

    # The non-root supervisor may start, stop and reset only ec-archive@ units.
    security.polkit.enable = mkIf managesUnits true;
    environment.etc."polkit-1/rules.d/50-ec-archive.rules" = mkIf managesUnits {
      source = "${units}/share/polkit-1/rules.d/50-ec-archive.rules";
    };

    environment.systemPackages = [ cfg.package ];
  };
}

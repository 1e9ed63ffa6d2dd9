# services.every-channel.ec-node.archive.serve: `ec-node archive-serve`, the
# archive read-only over HTTP (HLS, JSON API, player page), as one hardened
# ec-archive-serve.service. Imported by module.nix; see docs/serve.md.
{ config, lib, pkgs, ... }:
let
  archive = config.services.every-channel.ec-node.archive;
  cfg = archive.serve;
  inherit (lib) mkOption mkEnableOption mkIf types;
in
{
  options.services.every-channel.ec-node.archive.serve = {
    enable = mkEnableOption "ec-node archive-serve: the archive over HTTP (HLS, JSON API, a page that plays it)";

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:8080";
      example = "[::]:8080";
      description = "Address archive-serve listens on (a port of 1024 or more: the unit has no capabilities). Put a TLS proxy in front for other hosts.";
    };

    outputDir = mkOption {
      type = types.str;
      default = archive.outputDir;
      defaultText = "config.services.every-channel.ec-node.archive.outputDir";
      description = "CAS root served (read-only).";
    };

    manifestDir = mkOption {
      type = types.str;
      default = archive.manifestDir;
      defaultText = "config.services.every-channel.ec-node.archive.manifestDir";
      description = "Manifest root served (read-only).";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--verified-cache" "100000" "--log-format" "json" ];
      description = "Further flags of `ec-node archive-serve`.";
    };
  };

  config = mkIf cfg.enable {
    # The archive's account, so that the 0750 roots are readable; created as the
    # archive module does when left at the default.
    users.users = mkIf (archive.user == "ec-archive") {
      ec-archive = { isSystemUser = true; group = archive.group; description = "ec-node archive"; };
    };
    users.groups = mkIf (archive.group == "ec-archive") { ec-archive = { }; };

    systemd.services.ec-archive-serve = {
      description = "ec-node archive-serve (HLS over the archive)";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = {
        Type = "notify";
        ExecStart = lib.escapeShellArgs ([ "${archive.package}/bin/ec-node" "archive-serve"
          "--listen" cfg.listen "--root" cfg.outputDir "--manifest-dir" cfg.manifestDir ] ++ cfg.extraArgs);
        User = archive.user;
        Group = archive.group;
        Restart = "on-failure";
        RestartSec = "5s";
        RestartPreventExitStatus = "78";
        # As the archive workers (pkg/systemd), but with nothing writable.
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ReadOnlyPaths = [ cfg.outputDir cfg.manifestDir ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateUsers = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
        SystemCallErrorNumber = "EPERM";
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        UMask = "0027";
      };
    };
  };
}

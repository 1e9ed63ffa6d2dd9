package systemd

// The unit templates. Hardening shared by both services is one template
// ("hardening") so the worker and the supervisor cannot diverge.

const hardeningTmpl = `{{define "hardening"}}NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0027{{end}}`

const workerTmpl = `# Rendered by ` + "`ec-node systemd-units`" + ` (pkg/systemd); re-render instead of editing.
# One archive worker per broadcast; ec-archive-auto.service starts and stops the
# instances and writes {{.EnvDir}}/<instance>.env before each start.
[Unit]
Description=ec-node archive worker for %I
Documentation=https://github.com/every-channel/ec-node/blob/main/docs/systemd.md
PartOf={{.Target}}
After=network-online.target
Wants=network-online.target
RequiresMountsFor={{.Mounts}}
# The supervisor is the circuit breaker: it restarts failed instances with
# capped exponential backoff, so systemd's start limit is off.
StartLimitIntervalSec=0

[Service]
# wt-archive sends READY=1 once its store is open, then WATCHDOG=1 from its
# status loop every 2 s; a worker that is alive but receives nothing reconnects
# by itself (--stall-timeout).
Type=notify
NotifyAccess=main
WatchdogSec=30s
User={{.U.User}}
Group={{.U.Group}}
{{- if .U.EnvironmentFile}}
EnvironmentFile={{.EnvFile}}
{{- end}}
ExecStart={{.WorkerExec}}
Restart=on-failure
RestartSec=5s
# 78 (EX_CONFIG): the configuration cannot work, restarting will not help.
RestartPreventExitStatus=78
TimeoutStopSec=30s
ReadWritePaths={{.ReadWrite}} -{{.StatusDir}}
PrivateUsers=yes
{{template "hardening"}}
` + hardeningTmpl

const autoTmpl = `# Rendered by ` + "`ec-node systemd-units`" + ` (pkg/systemd); re-render instead of editing.
# Discovers live broadcasts and keeps one archive worker per broadcast
# (mode {{.U.Mode}}).
[Unit]
Description=ec-node archive discovery and worker supervisor
Documentation=https://github.com/every-channel/ec-node/blob/main/docs/systemd.md
PartOf={{.Target}}
After=network-online.target
Wants=network-online.target
{{- if eq .U.Mode "inprocess"}}
RequiresMountsFor={{.Mounts}}
{{- end}}

[Service]
{{- if gt .U.WatchdogSec 0}}
Type=notify
NotifyAccess=main
WatchdogSec={{.U.WatchdogSec}}s
{{- else}}
Type=exec
{{- end}}
User={{.U.User}}
Group={{.U.Group}}
{{- if .U.EnvironmentFile}}
EnvironmentFile={{.EnvFile}}
{{- end}}
ExecStart={{.AutoExec}}
Restart=on-failure
RestartSec=10s
RestartPreventExitStatus=78
# Workers keep running while the supervisor restarts; it re-adopts them from
# ` + "`systemctl list-units`" + `; their environment files must survive too.
RuntimeDirectory=ec-archive ec-archive/env ec-archive/status
RuntimeDirectoryMode=0750
RuntimeDirectoryPreserve=yes
{{- if eq .U.Mode "inprocess"}}
ReadWritePaths={{.ReadWrite}}
PrivateUsers=yes
{{- end}}
{{template "hardening"}}
` + hardeningTmpl

const targetTmpl = `# Rendered by ` + "`ec-node systemd-units`" + ` (pkg/systemd); re-render instead of editing.
# Stopping this target stops the supervisor and every {{.InstanceGlob}} (PartOf=);
# the archive data is left as it is.
[Unit]
Description=ec-node archive (discovery and all workers)
Documentation=https://github.com/every-channel/ec-node/blob/main/docs/systemd.md
Wants={{.Auto}}

[Install]
WantedBy=multi-user.target
`

const polkitTmpl = `// Rendered by ` + "`ec-node systemd-units`" + ` (pkg/systemd); install in /etc/polkit-1/rules.d/.
// Lets the archive supervisor ({{.U.User}}) start, stop and reset its own worker
// units and nothing else. The unit name is only set for methods on an existing
// unit, so StartTransientUnit (which shares this action) stays denied.
polkit.addRule(function(action, subject) {
  if (action.id !== "org.freedesktop.systemd1.manage-units" || subject.user !== "{{.U.User}}") {
    return polkit.Result.NOT_HANDLED;
  }
  var unit = action.lookup("unit");
  var verb = action.lookup("verb");
  if (typeof unit === "string" && /^ec-archive@[A-Za-z0-9:_.\\-]+\.service$/.test(unit) &&
      ["start", "stop", "reset-failed"].indexOf(verb) >= 0) {
    return polkit.Result.YES;
  }
  return polkit.Result.NOT_HANDLED;
});
`

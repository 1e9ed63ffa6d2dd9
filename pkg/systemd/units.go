package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/s3cas"
)

// Runtime paths shared by the supervisor and its worker instances. The
// supervisor unit owns RuntimeDir (RuntimeDirectory=ec-archive, preserved across
// its restarts so running workers keep their files).
const (
	RuntimeDir = "/run/ec-archive"
	EnvDir     = RuntimeDir + "/env"    // <instance>.env, read by the worker launcher
	StatusDir  = RuntimeDir + "/status" // <instance>.json, written by the workers
)

// Worker modes of the supervisor unit (archive-auto --mode).
const (
	ModeSystemd   = "systemd"
	ModeInProcess = "inprocess"
)

// Units are the settings the rendered units depend on. The NixOS module renders
// its units by running `ec-node systemd-units` with the same settings, so the
// unit text has exactly one source: this file.
type Units struct {
	ECNode      string // absolute path of the ec-node binary
	User, Group string // the dedicated account the services run as
	// OutputDir is the CAS: a root directory, or an s3:// store URL
	// (docs/cas-layout.md), which the units then neither mount nor may write.
	OutputDir   string
	ManifestDir string // manifest root; may be on another filesystem
	// Mode is the supervisor's worker mode: ModeSystemd starts ec-archive@
	// instances, ModeInProcess runs the workers inside the supervisor.
	Mode string
	// WorkerArgs are appended to `ec-node wt-archive` (--track, --tls-...).
	WorkerArgs []string
	// AutoArgs are appended to `ec-node archive-auto` (discovery, filters, ...).
	AutoArgs []string
	// Systemctl is the systemctl binary the supervisor runs ("" = from PATH).
	Systemctl string
	// WatchdogSec is the supervisor's watchdog timeout in seconds (0: none).
	WatchdogSec int
	// EnvironmentFile, if set, is read by both services (EnvironmentFile=):
	// the place for an S3 store's AWS_* credentials, kept out of the unit text.
	EnvironmentFile string
}

// File is one rendered file.
type File struct {
	Name string
	Text string
}

// PolkitRules is the file name of the rule that lets a non-root supervisor
// manage its worker units (installed in /etc/polkit-1/rules.d/).
const PolkitRules = "50-ec-archive.rules"

// Render renders ec-archive@.service, ec-archive-auto.service and
// ec-archive.target, plus the polkit rule when a non-root supervisor starts
// units.
func Render(u Units) ([]File, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	local := []string{u.ManifestDir}
	if !isStoreURL(u.OutputDir) {
		local = []string{u.OutputDir, u.ManifestDir}
	}
	data := map[string]any{
		"U":            u,
		"ReadWrite":    execQuoteAll(local),
		"Mounts":       execQuoteAll(local),
		"EnvFile":      execQuote(u.EnvironmentFile),
		"WorkerExec":   workerExec(u),
		"AutoExec":     autoExec(u),
		"StatusDir":    StatusDir,
		"EnvDir":       EnvDir,
		"RuntimeDir":   RuntimeDir,
		"Target":       TargetUnit,
		"Auto":         AutoUnit,
		"InstanceGlob": InstancePrefix + "*" + InstanceSuffix,
	}
	files := []File{
		{Name: InstancePrefix + InstanceSuffix, Text: workerTmpl},
		{Name: AutoUnit, Text: autoTmpl},
		{Name: TargetUnit, Text: targetTmpl},
	}
	if u.Mode == ModeSystemd && u.User != "root" {
		files = append(files, File{Name: PolkitRules, Text: polkitTmpl})
	}
	for i, f := range files {
		t, err := template.New(f.Name).Option("missingkey=error").Parse(f.Text)
		if err != nil {
			return nil, fmt.Errorf("unit template %s: %w", f.Name, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("unit template %s: %w", f.Name, err)
		}
		files[i].Text = b.String()
	}
	return files, nil
}

// WriteFiles writes files into dir (mode 0644), each replaced atomically.
func WriteFiles(dir string, files []File) error {
	for _, f := range files {
		if err := safefs.WriteFileAtomic(filepath.Join(dir, f.Name), []byte(f.Text), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.Name, err)
		}
	}
	return nil
}

func (u Units) validate() error {
	var errs []error
	paths := map[string]string{"ec-node binary": u.ECNode, "output dir": u.OutputDir, "manifest dir": u.ManifestDir}
	if isStoreURL(u.OutputDir) {
		delete(paths, "output dir")
		if _, err := s3cas.ParseURL(u.OutputDir); err != nil {
			errs = append(errs, fmt.Errorf("output dir: %w", err))
		}
	}
	if u.EnvironmentFile != "" {
		paths["environment file"] = u.EnvironmentFile
	}
	for name, p := range paths {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, "\n\r") {
			errs = append(errs, fmt.Errorf("%s %q: want an absolute path", name, p))
		}
	}
	for name, v := range map[string]string{"user": u.User, "group": u.Group} {
		if !validAccountName(v) {
			errs = append(errs, fmt.Errorf("%s %q: want a plain account name", name, v))
		}
	}
	if u.Mode != ModeSystemd && u.Mode != ModeInProcess {
		errs = append(errs, fmt.Errorf("mode %q: want %s or %s", u.Mode, ModeSystemd, ModeInProcess))
	}
	if u.WatchdogSec < 0 {
		errs = append(errs, fmt.Errorf("watchdog %ds: want >= 0", u.WatchdogSec))
	}
	return errors.Join(errs...)
}

// isStoreURL tells an object-store URL from a CAS root directory.
func isStoreURL(s string) bool { return strings.HasPrefix(s, "s3://") }

func validAccountName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// workerExec is the instance's command line: the launcher reads relay,
// broadcast and status file from the instance's environment file (%i is passed
// verbatim, backslashes included) and execs `ec-node wt-archive` with them and
// the arguments after "--".
func workerExec(u Units) string {
	args := []string{"--", "--output-dir", u.OutputDir, "--manifest-dir", u.ManifestDir}
	args = append(args, u.WorkerArgs...)
	return execQuote(u.ECNode) + " archive-auto worker --env-file " + EnvDir + "/%i.env " + execQuoteAll(args)
}

// autoExec is the supervisor's command line. The worker flags are passed too:
// in-process workers use them directly, and they document what the instances run.
func autoExec(u Units) string {
	args := []string{u.ECNode, "archive-auto", "--mode", u.Mode, "--status-dir", StatusDir,
		"--output-dir", u.OutputDir, "--manifest-dir", u.ManifestDir}
	if u.Mode == ModeSystemd {
		args = append(args, "--env-dir", EnvDir)
		if u.Systemctl != "" {
			args = append(args, "--systemctl", u.Systemctl)
		}
	}
	args = append(args, u.WorkerArgs...)
	args = append(args, u.AutoArgs...)
	return execQuoteAll(args)
}

// execQuoteAll renders argv for ExecStart= (and other space-separated lists):
// "%" and "$" are doubled so that systemd neither expands specifiers nor
// variables, and words with other special characters are double-quoted with
// C-style escapes.
func execQuoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = execQuote(a)
	}
	return strings.Join(q, " ")
}

func execQuote(a string) string {
	a = strings.NewReplacer("%", "%%", "$", "$$").Replace(a)
	plain := a != "" && a != ";"
	for i := 0; i < len(a) && plain; i++ {
		c := a[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_./:=,@+-%$", c) >= 0
	}
	if plain {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(a); i++ {
		switch c := a[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
)

// CASVerify is `ec-node cas verify`: re-hash every object of a CAS tree.
func CASVerify() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "re-hash every object of a CAS tree; report corrupt, stray and temp files",
		Description: "Prints one finding per line on stdout (kind, path, details) and a summary on stderr;\n" +
			"with --json, one JSON report on stdout instead. Exits 1 if any object is corrupt or\n" +
			"unreadable or any stray file is found; temp files of live or crashed writers are listed\n" +
			"but are not an error. Symbolic links and special files below --root are stray: never\n" +
			"followed or read. Only reads: works on read-only snapshots.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Aliases: []string{"store"}, Usage: storeUsage + " (must be given)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
			&cli.IntFlag{Name: "workers", Usage: "objects hashed in parallel, 0 to 4096 (0: GOMAXPROCS, one per usable CPU)"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress on stderr: auto (when stderr is a terminal), always or never"},
			&cli.StringFlag{Name: "manifest-dir", Usage: "also cross-check the manifests under `DIR` against the tree, as manifest check --unreferenced does, without hashing again"},
		},
		Action: runCASVerify,
	}
}

func runCASVerify(c *cli.Context) error {
	std := streams(c)
	if c.String("root") == "" || c.Args().Present() {
		return usageErrorf("usage: verify --root DIR|--store s3://BUCKET/PREFIX [--json] [--workers N] [--progress auto|always|never]")
	}
	workers := c.Int("workers")
	if workers < 0 || workers > 4096 {
		return usageErrorf("--workers: want 0..4096, got %d", workers)
	}
	showProgress, err := progressWanted(c.String("progress"), std.Stderr)
	if err != nil {
		return err
	}
	opts := cas.VerifyOptions{Workers: workers}
	var bar *progressBar
	if showProgress {
		bar = newProgressBar(std.Stderr)
		opts.Progress = func(p cas.VerifyProgress) { verifyProgress(bar, p) }
	}
	var (
		seenMu sync.Mutex
		seen   []cas.ID // objects whose content matches their name
	)
	if c.String("manifest-dir") != "" {
		opts.OnObject = func(o cas.ObjectCheck) {
			if o.Match {
				seenMu.Lock()
				seen = append(seen, o.ID)
				seenMu.Unlock()
			}
		}
	}

	report, err := verifyStore(c.Context, c.String("root"), opts)
	if bar != nil {
		bar.clear()
	}
	if err != nil {
		return withExit(ExitIOErr, err)
	}

	var manifests *manifest.CheckReport
	if dir := c.String("manifest-dir"); dir != "" {
		rep, err := crossCheck(c, dir, seen)
		if err != nil {
			return withExit(treeExit(err), err)
		}
		manifests = &rep
	}

	if c.Bool("json") {
		if report.Findings == nil {
			report.Findings = []cas.Finding{}
		}
		var v any = report
		if manifests != nil {
			v = struct {
				CAS       cas.VerifyReport      `json:"cas"`
				Manifests *manifest.CheckReport `json:"manifests"`
			}{report, manifests}
		}
		if err := json.NewEncoder(std.Stdout).Encode(v); err != nil {
			return withExit(ExitIOErr, fmt.Errorf("write report: %w", err))
		}
	} else {
		for _, f := range report.Findings {
			if _, err := fmt.Fprintln(std.Stdout, findingLine(f)); err != nil {
				return withExit(ExitIOErr, fmt.Errorf("write findings: %w", err))
			}
		}
		fmt.Fprintln(std.Stderr, summaryLine(&report))
		if manifests != nil {
			if err := printManifestReport(std.Stdout, manifests, false, true); err != nil {
				return withExit(ExitIOErr, err)
			}
		}
	}
	var problems error
	if !report.Clean() {
		problems = fmt.Errorf("cas verify %s: %d corrupt, %d unreadable, %d stray",
			report.Root, report.Corrupt, report.Unreadable, report.Stray)
	}
	if manifests != nil && !manifests.Clean() {
		problems = errors.Join(problems, fmt.Errorf("%d manifest problems in %s", manifests.ProblemCount, c.String("manifest-dir")))
	}
	return withExit(ExitFailure, problems)
}

// crossCheck checks the manifests against the objects Verify just re-hashed:
// the objects need not be hashed again, only looked up.
func crossCheck(c *cli.Context, dir string, seen []cas.ID) (manifest.CheckReport, error) {
	store, err := openStore(c.Context, c.String("root"))
	if err != nil {
		return manifest.CheckReport{}, err
	}
	opts := manifest.CheckOptions{ListObjects: func(ctx context.Context, fn func(cas.ID) error) error {
		for _, id := range seen {
			if err := fn(id); err != nil {
				return err
			}
		}
		return nil
	}}
	return manifest.Check(c.Context, dir, store, opts)
}

// treeExit is the exit code for a tree that cannot be opened: 1 when it is
// because of a symbolic link or special file where the layout has a directory
// or file (a problem in the tree, as verify reports it), 74 otherwise.
func treeExit(err error) int {
	if safefs.IsWrongKind(err) {
		return ExitFailure
	}
	return ExitIOErr
}

// findingLine formats a finding as tab-separated fields: kind, path, details.
func findingLine(f cas.Finding) string {
	fields := []string{string(f.Kind), displayPath(f.Path), "size=" + strconv.FormatInt(f.Size, 10)}
	switch f.Kind {
	case cas.Corrupt:
		fields = append(fields, "expected="+f.Expected, "actual="+f.Actual)
	case cas.Temp:
		fields = append(fields, "age="+f.Age.String())
	}
	if f.Detail != "" {
		fields = append(fields, "detail="+strconv.Quote(f.Detail))
	}
	return strings.Join(fields, "\t")
}

// displayPath quotes paths that would break the one-finding-per-line output:
// names of stray files are arbitrary bytes.
func displayPath(p string) string {
	if !utf8.ValidString(p) || strings.ContainsFunc(p, unicode.IsControl) || strings.HasPrefix(p, `"`) {
		return strconv.Quote(p)
	}
	return p
}

func summaryLine(r *cas.VerifyReport) string {
	secs := r.Duration.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(r.Bytes) / secs / (1 << 20)
	}
	return fmt.Sprintf("verified %d objects, %.1f MiB in %s (%.0f MiB/s, %.0f objects/s): %d corrupt, %d unreadable, %d stray, %d temp",
		r.Objects, float64(r.Bytes)/(1<<20), r.Duration.Round(time.Millisecond), rate, float64(r.Objects)/max(secs, 1e-9),
		r.Corrupt, r.Unreadable, r.Stray, r.Temp)
}

// verifyProgress draws a Verify snapshot. Object ids are uniform, so the
// fraction of shard directories walked estimates the fraction done.
func verifyProgress(bar *progressBar, p cas.VerifyProgress) {
	done := 0.0
	if p.ShardsTotal > 0 {
		done = float64(p.ShardsWalked) / float64(p.ShardsTotal)
	}
	rate := float64(p.Bytes) / max(p.Elapsed.Seconds(), 1e-9) / (1 << 20)
	bar.draw(done, fmt.Sprintf("%d objects  %.1f MiB  %.0f MiB/s%s", p.Objects, float64(p.Bytes)/(1<<20), rate, eta(p.Elapsed, done)))
}

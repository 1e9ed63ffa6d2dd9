package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/export"
	"github.com/every-channel/ec-node/pkg/manifest"
)

// Export is `ec-node export`: a range of an archived broadcast as playable MP4.
func Export() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a range of an archived broadcast as fragmented MP4",
		ArgsUsage: " ",
		Description: `Reads the manifests and objects of --broadcast and writes the range as one
fragmented MP4 with every track muxed (or one file per track with --per-track), using the
catalog in force when each group was received. Every object is re-hashed as it is read.

The range is --from/--to (receive times: RFC 3339 or Unix milliseconds), or the lead
(first video) track's media time --media-from/--media-to or groups --groups A-B within one
publisher --session; nothing selects it all.
A catalog change or a publisher restart inside the range starts a new file: OUT, then
OUT with -2, -3, ... before its extension (--single-file refuses instead). Groups missing
inside the range are passed over, and their count by reason is printed on stderr.
--output - writes to stdout (one muxed file), e.g. 'ec-node export ... -o - | ffplay -'.
See docs/export.md.

EXIT STATUS
   0   exported
   1   the range could not be exported (corrupt or missing object, no catalog, empty range)
   2   bad flags or arguments
   65  a manifest line is malformed
   74  an output file could not be written
   78  --manifest-dir, --root, --broadcast or --output missing`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "manifest-dir", Required: true, Usage: "manifest root directory", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.StringFlag{Name: "root", Aliases: []string{"store"}, Required: true, Usage: storeUsage, EnvVars: []string{"EC_CAS_ROOT"}},
			&cli.StringFlag{Name: "broadcast", Required: true, Usage: "broadcast name, as archived"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "output file; - for stdout"},
			&cli.StringFlag{Name: "from", Usage: "first receive time (RFC 3339 or Unix ms)"},
			&cli.StringFlag{Name: "to", Usage: "last receive time (RFC 3339 or Unix ms)"},
			&cli.StringFlag{Name: "media-from", Usage: "first media time of the lead track (90s, 1m30s or seconds)"},
			&cli.StringFlag{Name: "media-to", Usage: "last media time of the lead track"},
			&cli.StringFlag{Name: "groups", Usage: "group range A-B (or A) of the lead track"},
			&cli.IntFlag{Name: "session", Usage: "publisher session (1-based) of --groups or --media-*, when more than one holds them"},
			&cli.StringSliceFlag{Name: "track", Usage: "export only these tracks (repeatable; default: every rendition)"},
			&cli.BoolFlag{Name: "per-track", Usage: "one file per track: OUT's name with .TRACK before its extension"},
			&cli.BoolFlag{Name: "single-file", Usage: "fail if the range needs more than one file"},
			&cli.BoolFlag{Name: "skip-corrupt", Usage: "pass over a missing or corrupt object as a gap instead of failing"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress on stderr: auto (when stderr is a terminal), always or never"},
		},
		Action: runExport,
	}
}

func runExport(c *cli.Context) error {
	std := streams(c)
	if c.Args().Present() {
		return usageErrorf("export takes no arguments, got %q", c.Args().First())
	}
	rng, err := exportRange(c)
	if err != nil {
		return err
	}
	toStdout := c.String("output") == "-"
	if toStdout && c.Bool("per-track") {
		return usageErrorf("--per-track writes several files; give --output a file name")
	}
	showProgress, err := progressWanted(c.String("progress"), std.Stderr)
	if err != nil {
		return err
	}
	root := c.String("root")
	store, err := openExportStore(c.Context, root)
	if err != nil {
		return err
	}
	opts := export.Options{
		ManifestDir: c.String("manifest-dir"), Store: store, StoreRoot: root,
		Broadcast: c.String("broadcast"), Tracks: c.StringSlice("track"), Range: rng,
		PerTrack: c.Bool("per-track"), SingleFile: c.Bool("single-file") || toStdout,
		SkipCorrupt: c.Bool("skip-corrupt"),
	}
	var bar *progressBar
	if showProgress {
		bar = newProgressBar(std.Stderr)
		var last time.Time
		opts.Progress = func(p export.Progress) {
			if now := time.Now(); now.Sub(last) > 100*time.Millisecond || p.Groups == p.GroupsTotal {
				last = now
				bar.draw(float64(p.Groups)/float64(max(p.GroupsTotal, 1)),
					fmt.Sprintf("export: %d/%d groups  %.1f MiB", p.Groups, p.GroupsTotal, float64(p.Bytes)/(1<<20)))
			}
		}
	}
	out := &outputFiles{base: c.String("output"), stdout: std.Stdout}
	rep, err := export.Export(c.Context, opts, out.open)
	if bar != nil {
		bar.clear()
	}
	for _, why := range rep.NotExported {
		fmt.Fprintf(std.Stderr, "export: not exported: %s\n", why)
	}
	for _, f := range rep.Files {
		what := "all tracks"
		if f.Track != "" {
			what = "track " + strconv.Quote(f.Track)
		}
		fmt.Fprintf(std.Stderr, "export: %s: %s, publisher session %d, %.3f s of media from %.3f s, %d fragments\n",
			out.name(f.N, f.Track), what, f.Session, f.Duration, f.Start, f.Fragments)
	}
	for _, m := range rep.Missing {
		where := fmt.Sprintf("track %q session %d", m.Track, m.Session)
		if m.Session == 0 {
			where = fmt.Sprintf("track %q", m.Track)
		}
		fmt.Fprintf(std.Stderr, "export: missing in the range: %s: %d group(s) (%s)\n", where, m.Groups, m.Reason)
	}
	if err != nil {
		out.discard()
		return exportError(err, toStdout)
	}
	return nil
}

// openExportStore opens an existing store for reading: a root that is not one
// is refused rather than created empty.
func openExportStore(ctx context.Context, root string) (cas.Store, error) {
	if fi, err := os.Stat(filepath.Join(root, "objects", "blake3")); !strings.HasPrefix(root, "s3://") && (err != nil || !fi.IsDir()) {
		return nil, configErrorf("--root %s is not a CAS root (no objects/blake3)", root)
	}
	store, err := openStore(ctx, root)
	if err != nil {
		return nil, withExit(ExitIOErr, err)
	}
	return store, nil
}

// exportRange reads the range flags.
func exportRange(c *cli.Context) (export.Range, error) {
	var r export.Range
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", &r.From}, {"to", &r.To}} {
		if v := c.String(f.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return r, usageErrorf("--%s: %v", f.name, err)
			}
			*f.t = t
		}
	}
	if !r.From.IsZero() && !r.To.IsZero() && r.To.Before(r.From) {
		return r, usageErrorf("--to %s is before --from %s", c.String("to"), c.String("from"))
	}
	for _, f := range []struct {
		name string
		d    *time.Duration
	}{{"media-from", &r.MediaFrom}, {"media-to", &r.MediaTo}} {
		if v := c.String(f.name); v != "" {
			d, err := parseMediaTime(v)
			if err != nil {
				return r, usageErrorf("--%s: %v", f.name, err)
			}
			*f.d, r.Media = d, true
		}
	}
	groups := c.String("groups")
	kinds := 0
	for _, set := range []bool{!r.From.IsZero() || !r.To.IsZero(), r.Media, groups != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return r, usageErrorf("choose one kind of range: --from/--to, --media-from/--media-to or --groups")
	case c.IsSet("session") && !r.Media && groups == "":
		return r, usageErrorf("--session needs --groups or --media-from/--media-to")
	case r.Media && r.MediaTo > 0 && r.MediaTo < r.MediaFrom:
		return r, usageErrorf("--media-to %s is before --media-from %s", r.MediaTo, r.MediaFrom)
	}
	if r.Session = c.Int("session"); r.Session < 0 {
		return r, usageErrorf("--session: want a session number from 1, got %d", r.Session)
	}
	if groups == "" {
		return r, nil
	}
	first, last, found := strings.Cut(groups, "-")
	if !found {
		last = first
	}
	var err1, err2 error
	r.First, err1 = strconv.ParseUint(first, 10, 64)
	r.Last, err2 = strconv.ParseUint(last, 10, 64)
	if err1 != nil || err2 != nil || r.Last < r.First {
		return r, usageErrorf("--groups: want A-B with A <= B, e.g. 10-20, got %q", groups)
	}
	r.Groups = true
	return r, nil
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 (2026-01-01T12:00:00Z) or Unix milliseconds, got %q", s)
	}
	return t, nil
}

// parseMediaTime reads a duration (90s, 1m30s) or seconds (90, 12.5).
func parseMediaTime(s string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 && secs < 1e9 {
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration (90s, 1m30s) or seconds, got %q", s)
	}
	return d, nil
}

// exportError maps an export failure to its exit status.
func exportError(err error, toStdout bool) error {
	var line *manifest.LineError
	var out *outputError
	switch {
	case errors.As(err, &out):
		return withExit(ExitIOErr, err)
	case errors.As(err, &line):
		return withExit(ExitDataErr, err)
	case errors.Is(err, export.ErrMultipleFiles) && toStdout:
		return withExit(ExitFailure, fmt.Errorf("%w; stdout takes one file: give --output a file name", err))
	}
	return withExit(ExitFailure, err)
}

// outputFiles creates the output files: each is written to a temporary file
// beside its final name and linked there, never replacing a file, only once
// complete and synced.
type outputFiles struct {
	base    string
	stdout  io.Writer
	pending []*os.File // temporary files not committed
}

// outputError marks a failure to write the output.
type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// name is the path of file n for track ("" when muxed).
func (o *outputFiles) name(n int, track string) string {
	if o.base == "-" {
		return "stdout"
	}
	ext := filepath.Ext(o.base)
	stem := strings.TrimSuffix(o.base, ext)
	if n > 0 {
		stem += "-" + strconv.Itoa(n+1)
	}
	if track != "" {
		escaped, err := manifest.EscapeName(track)
		if err != nil {
			escaped = "track"
		}
		stem += "." + escaped
	}
	return stem + ext
}

func (o *outputFiles) open(n int, track string) (io.WriteCloser, error) {
	if o.base == "-" {
		return stdoutFile{o.stdout}, nil
	}
	final := o.name(n, track)
	if _, err := os.Lstat(final); err == nil {
		return nil, &outputError{fmt.Errorf("%s exists; export does not replace files", final)}
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".partial-*")
	if err != nil {
		return nil, &outputError{err}
	}
	o.pending = append(o.pending, f)
	return &outputFile{File: f, final: final, o: o}, nil
}

// discard removes the temporary files of an export that failed.
func (o *outputFiles) discard() {
	for _, f := range o.pending {
		f.Close()
		os.Remove(f.Name())
	}
	o.pending = nil
}

type outputFile struct {
	*os.File
	final string
	o     *outputFiles
}

func (f *outputFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if err != nil {
		err = &outputError{err}
	}
	return n, err
}

// Close commits the file: sync, close, link to its final name (failing if one
// appeared meanwhile), remove the temporary name, sync the directory.
func (f *outputFile) Close() error {
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), f.final)
	}
	if err != nil {
		return &outputError{fmt.Errorf("%s: %w", f.final, err)}
	}
	os.Remove(f.Name())
	for i, p := range f.o.pending {
		if p == f.File {
			f.o.pending = append(f.o.pending[:i], f.o.pending[i+1:]...)
			break
		}
	}
	if d, err := os.Open(filepath.Dir(f.final)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil && !errors.Is(err, fs.ErrInvalid) {
			return &outputError{fmt.Errorf("sync %s: %w", filepath.Dir(f.final), err)}
		}
	}
	return nil
}

// stdoutFile is the output on stdout: nothing to commit.
type stdoutFile struct{ w io.Writer }

func (s stdoutFile) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = &outputError{fmt.Errorf("stdout: %w", err)}
	}
	return n, err
}

func (stdoutFile) Close() error { return nil }

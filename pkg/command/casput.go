package command

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/commit"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/urfave/cli/v2"
)

// CASPut is `cas-put` (`ec-node cas put`): store files, or the payloads of a
// record stream, in the CAS.
func CASPut() *cli.Command {
	return &cli.Command{
		Name:      "put",
		Usage:     "store files or a record stream in the content-addressed store",
		ArgsUsage: "[FILE|-]...",
		Description: `Without --records, stores each FILE ("-" or no FILE: standard input) and prints
"<blake3>  <name>" lines exactly as b3sum does, so the two outputs can be diffed.

With --records, reads a record stream (docs/record-framing.md) from standard input,
stores each group's payload and prints one manifest entry per record as a JSON line
(docs/manifest.md), in input order, each only once its object is durable. Pipe it
into manifest-append:

    moq-sub ... | cas-put --root /srv/cas --records | manifest-append --manifest-dir /srv/manifests

EXIT STATUS
   0   everything stored
   1   some FILE could not be stored (the others were)
   2   bad flags or arguments
   65  malformed or oversized record: nothing was stored for it; records before it were
   74  the store could not be written or the output not written
   78  --root missing`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Aliases: []string{"store"}, Required: true, Usage: storeUsage, EnvVars: []string{"EC_CAS_ROOT"}},
			&cli.BoolFlag{Name: "records", Usage: "read a record stream from standard input and print manifest entries"},
			&cli.Int64Flag{Name: "max-payload", Value: record.DefaultMaxPayload, Usage: "largest record payload accepted, in bytes (--records)"},
			&cli.IntFlag{Name: "jobs", Value: 16, Usage: "objects committed concurrently (--records)"},
		},
		Action: runCASPut,
	}
}

func runCASPut(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.Int("jobs") < 1 {
		return usageErrorf("--jobs: want at least 1, got %d", c.Int("jobs"))
	}
	if c.Int64("max-payload") < 1 {
		return usageErrorf("--max-payload: want at least 1, got %d", c.Int64("max-payload"))
	}
	if c.Bool("records") && c.NArg() > 0 {
		return usageErrorf("--records reads standard input and takes no FILE arguments")
	}
	store, err := openStore(c.Context, c.String("root"))
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	st := streams(c)
	if c.Bool("records") {
		limits := record.DefaultLimits()
		limits.MaxPayload = c.Int64("max-payload")
		// A pipeline stage drains its input: on SIGINT/SIGTERM the whole pipe is
		// signalled, moq-sub stops and closes its stdout, and every record it
		// wrote must still be stored. A second signal kills (see Main).
		return putRecords(context.WithoutCancel(c.Context), log, store, st, limits, c.Int("jobs"))
	}
	names := c.Args().Slice()
	if len(names) == 0 {
		names = []string{"-"}
	}
	return putFiles(c.Context, c.App.Name, store, st, names)
}

// putFiles stores each named file and prints b3sum lines. Like b3sum, a file that
// cannot be stored is reported on stderr and the others are still stored.
func putFiles(ctx context.Context, prog string, store cas.Store, st Streams, names []string) error {
	out := bufio.NewWriter(st.Stdout)
	failed := 0
	for _, name := range names {
		res, err := putFile(ctx, store, st.Stdin, name)
		if err != nil {
			fmt.Fprintf(st.Stderr, "%s: %s: %v\n", prog, name, err)
			failed++
			continue
		}
		if _, err := io.WriteString(out, b3sumLine(res.ID, name)); err != nil {
			return withExit(ExitIOErr, fmt.Errorf("write output: %w", err))
		}
	}
	if err := out.Flush(); err != nil {
		return withExit(ExitIOErr, fmt.Errorf("write output: %w", err))
	}
	if failed > 0 {
		return withExit(ExitFailure, fmt.Errorf("%d of %d files not stored", failed, len(names)))
	}
	return nil
}

func putFile(ctx context.Context, store cas.Store, stdin io.Reader, name string) (cas.PutResult, error) {
	if name == "-" {
		return cas.Put(ctx, store, stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return cas.PutResult{}, err
	}
	defer f.Close()
	return cas.Put(ctx, store, f)
}

// b3sumLine formats a line as b3sum 1.x does: the name is converted to UTF-8
// replacing invalid sequences with U+FFFD, and a name holding '\\' or '\n' is
// written with those escaped and the line prefixed by '\\'.
func b3sumLine(id cas.ID, name string) string {
	name = lossyUTF8(name)
	prefix := ""
	if strings.ContainsAny(name, "\\\n") {
		prefix = "\\"
		name = strings.NewReplacer("\\", "\\\\", "\n", "\\n").Replace(name)
	}
	return prefix + id.String() + "  " + name + "\n"
}

// lossyUTF8 replaces each maximal invalid subsequence of s with U+FFFD, as Rust's
// String::from_utf8_lossy (which b3sum uses) does; Go's strings.ToValidUTF8
// collapses runs differently.
func lossyUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n > 1 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		b.WriteRune(utf8.RuneError)
		i += invalidPrefixLen(s[i:])
	}
	return b.String()
}

// invalidPrefixLen is the length of the maximal subpart of an invalid UTF-8
// sequence at the start of p: its lead byte plus the continuation bytes that
// could still have completed it (Unicode ch. 3, "U+FFFD substitution").
func invalidPrefixLen(p string) int {
	c := p[0]
	var width int
	lo, hi := byte(0x80), byte(0xBF) // allowed second byte
	switch {
	case 0xC2 <= c && c <= 0xDF:
		width = 2
	case c == 0xE0:
		width, lo = 3, 0xA0
	case c == 0xED:
		width, hi = 3, 0x9F
	case 0xE1 <= c && c <= 0xEF:
		width = 3
	case c == 0xF0:
		width, lo = 4, 0x90
	case c == 0xF4:
		width, hi = 4, 0x8F
	case 0xF1 <= c && c <= 0xF3:
		width = 4
	default:
		return 1
	}
	if len(p) < 2 || p[1] < lo || p[1] > hi {
		return 1
	}
	n := 2
	for n < width && n < len(p) && 0x80 <= p[n] && p[n] <= 0xBF {
		n++
	}
	return n
}

// putRecords stores the payloads of the record stream on st.Stdin and prints a
// manifest entry per record, through a commit.Queue: payloads stream into the
// store one at a time (the stream is sequential), their commits run concurrently,
// at most jobs at once, and each entry is printed in input order once its object
// is durable. The first failure stops the stream.
func putRecords(ctx context.Context, log *slog.Logger, store cas.Store, st Streams, limits record.Limits, jobs int) error {
	rd, err := record.NewReader(st.Stdin, limits)
	if err != nil {
		return withExit(ExitUsage, err)
	}
	start := time.Now()
	printer := &entryPrinter{out: bufio.NewWriterSize(st.Stdout, 64<<10)}
	queue := commit.NewQueue(store, jobs, printer.print)
	var readErr error
	for queue.Err() == nil {
		h, payload, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = classifyRecordErr(err)
			break
		}
		if h.Kind == record.KindGap {
			// Reading the (empty) payload checks the record's terminator.
			if _, err = io.Copy(io.Discard, payload); err == nil {
				_, err = queue.Add(h, nil)
			}
		} else {
			_, err = queue.Put(ctx, h, payload)
		}
		if errors.Is(err, commit.ErrStopped) {
			break // the failure is Close's to report
		}
		if err != nil {
			readErr = classifyRecordErr(err)
			break
		}
	}
	stopErr := queue.Close()
	if err := printer.out.Flush(); err != nil && stopErr == nil {
		stopErr = fmt.Errorf("write output: %w", err)
	}
	if stopErr != nil {
		stopErr = withExit(ExitIOErr, stopErr)
	}
	s := printer.stats
	log.Info("cas-put: records done", "records", s.records, "groups", s.groups, "gaps", s.gaps,
		"new_objects", s.newObjects, "bytes", s.bytes, "elapsed", time.Since(start).Round(time.Millisecond))
	return errors.Join(readErr, stopErr)
}

// classifyRecordErr gives a failure reading or storing a record its exit status:
// a malformed record is bad input, anything else an I/O error.
func classifyRecordErr(err error) error {
	if errors.Is(err, record.ErrMalformed) {
		return withExit(ExitDataErr, err)
	}
	return withExit(ExitIOErr, err)
}

// entryPrinter prints the entries a commit.Queue delivers as manifest lines,
// flushing whenever no further entry is ready, so a line leaves as soon as its
// object is durable.
type entryPrinter struct {
	out   *bufio.Writer
	line  []byte
	stats struct {
		records, groups, gaps, newObjects int
		bytes                             int64
	}
}

func (p *entryPrinter) print(e manifest.Entry, more bool) error {
	line, err := manifest.AppendLine(p.line[:0], e)
	p.line = line
	if err == nil {
		_, err = p.out.Write(line)
	}
	if err == nil && !more {
		err = p.out.Flush()
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	p.stats.records++
	if e.Kind == record.KindGap {
		p.stats.gaps++
		return nil
	}
	p.stats.groups++
	p.stats.bytes += e.Size
	if *e.New {
		p.stats.newObjects++
	}
	return nil
}

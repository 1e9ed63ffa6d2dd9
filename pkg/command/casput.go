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
   74  the store could not be written or the output not written`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Required: true, Usage: "CAS root directory", EnvVars: []string{"EC_CAS_ROOT"}},
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
	store, err := cas.OpenLocal(c.String("root"))
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
		return store.Put(ctx, stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return cas.PutResult{}, err
	}
	defer f.Close()
	return store.Put(ctx, f)
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
// manifest entry per record. Payloads stream into the store one at a time (the
// stream is sequential); their commits, which wait for fsync, run concurrently,
// at most jobs at once, and their entries are printed in input order.
func putRecords(ctx context.Context, log *slog.Logger, store *cas.Local, st Streams, limits record.Limits, jobs int) error {
	rd, err := record.NewReader(st.Stdin, limits)
	if err != nil {
		return withExit(ExitUsage, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	queue := make(chan *pendingEntry, jobs)
	printed := make(chan recordStats, 1)
	go func() { printed <- printEntries(st.Stdout, queue, cancel) }()

	var readErr error
	buf := make([]byte, 256<<10)
	for ctx.Err() == nil {
		h, payload, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = classifyRecordErr(err)
			break
		}
		p := &pendingEntry{entry: manifest.Entry{Header: h}, done: make(chan struct{})}
		if h.Kind == record.KindGap {
			// Reading the (empty) payload checks the record's terminator.
			if _, err := io.Copy(io.Discard, payload); err != nil {
				readErr = classifyRecordErr(err)
				break
			}
			close(p.done)
			queue <- p
			continue
		}
		w, err := store.Create(ctx)
		if err != nil {
			readErr = withExit(ExitIOErr, err)
			break
		}
		if _, err := io.CopyBuffer(w, payload, buf); err != nil {
			w.Abort()
			readErr = classifyRecordErr(err)
			break
		}
		queue <- p // blocks while jobs entries are pending: bounds commits in flight
		go func() {
			defer close(p.done)
			res, err := w.Commit()
			if err != nil {
				p.err = fmt.Errorf("record group %d: %w", h.Group, err)
				return
			}
			p.entry.BLAKE3, p.entry.Path, p.entry.New = res.ID.String(), res.Path, &res.New
		}()
	}
	close(queue)
	stats := <-printed
	log.Info("cas-put: records done", "records", stats.records, "groups", stats.groups, "gaps", stats.gaps,
		"new_objects", stats.newObjects, "bytes", stats.bytes, "elapsed", time.Since(start).Round(time.Millisecond))
	if cause := context.Cause(ctx); stats.err == nil && readErr == nil && cause != nil {
		return withExit(ExitTempFail, cause)
	}
	return errors.Join(readErr, stats.err)
}

func classifyRecordErr(err error) error {
	if errors.Is(err, record.ErrMalformed) {
		return withExit(ExitDataErr, err)
	}
	return withExit(ExitIOErr, err)
}

// pendingEntry is a record's entry, complete once done is closed (err unset).
type pendingEntry struct {
	entry manifest.Entry
	err   error
	done  chan struct{}
}

type recordStats struct {
	records, groups, gaps, newObjects int
	bytes                             int64
	err                               error
}

// printEntries prints entries in queue order as each completes, flushing whenever
// no further entry is waiting, so a line leaves as soon as its object is durable.
// After the first failure it prints nothing more and cancels the producer.
func printEntries(w io.Writer, queue <-chan *pendingEntry, cancel context.CancelCauseFunc) recordStats {
	out := bufio.NewWriterSize(w, 64<<10)
	var s recordStats
	var line []byte
	for p := range queue {
		<-p.done
		if s.err != nil {
			continue
		}
		if p.err != nil {
			s.err = withExit(ExitIOErr, p.err)
			cancel(p.err)
			continue
		}
		var err error
		if line, err = manifest.AppendLine(line[:0], p.entry); err == nil {
			_, err = out.Write(line)
		}
		if err == nil && len(queue) == 0 {
			err = out.Flush()
		}
		if err != nil {
			s.err = withExit(ExitIOErr, fmt.Errorf("write output: %w", err))
			cancel(s.err)
			continue
		}
		s.records++
		if p.entry.Kind == record.KindGap {
			s.gaps++
			continue
		}
		s.groups++
		s.bytes += p.entry.Size
		if *p.entry.New {
			s.newObjects++
		}
	}
	if err := out.Flush(); err != nil && s.err == nil {
		s.err = withExit(ExitIOErr, fmt.Errorf("write output: %w", err))
	}
	return s
}

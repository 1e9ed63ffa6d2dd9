package command

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/urfave/cli/v2"
)

// ManifestAppend is `manifest-append` (`ec-node manifest append`): append the
// entries cas-put prints to the per-track manifest files.
func ManifestAppend() *cli.Command {
	return &cli.Command{
		Name:  "append",
		Usage: "append manifest entries (JSON lines from cas-put --records) to per-track manifests",
		Description: `Reads manifest entries, one JSON line each (docs/manifest.md), from standard input
and appends each to <manifest-dir>/<escaped broadcast>/<escaped track>.jsonl, without
the "new" field and skipping entries already in the file's dedup window.

Durability: lines are fsynced in batches. A batch ends when no complete line is
waiting in the input (so a line is never held while manifest-append waits for more
input) or after --batch lines. A crash loses at most the lines read since the last
batch, and those were never reported as appended. The objects they name were made
durable by cas-put before it printed them.

EXIT STATUS
   0   every line appended (or already present)
   2   bad flags or arguments
   65  a malformed line (its number is given); the lines before it were appended
   74  a manifest file could not be written
   78  --manifest-dir missing`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "manifest-dir", Required: true, Usage: "manifest root directory", EnvVars: []string{"EC_MANIFEST_DIR"}},
			&cli.IntFlag{Name: "batch", Value: 1024, Usage: "most lines per fsync batch"},
			&cli.IntFlag{Name: "max-open", Value: manifest.DefaultMaxOpen, Usage: "most manifest files kept open"},
		},
		Action: runManifestAppend,
	}
}

func runManifestAppend(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.Int("batch") < 1 {
		return usageErrorf("--batch: want at least 1, got %d", c.Int("batch"))
	}
	dir, err := manifest.OpenDir(c.String("manifest-dir"), c.Int("max-open"), log)
	if err != nil {
		return withExit(ExitIOErr, err)
	}
	start := time.Now()
	b := &appendBatch{dir: dir, pending: make(map[fileKey][]manifest.Entry)}
	err = b.run(manifest.NewDecoder(streams(c).Stdin), c.Int("batch"))
	if cerr := dir.Close(); err == nil && cerr != nil {
		err = withExit(ExitIOErr, cerr)
	}
	log.Info("manifest-append: done", "lines", b.lines, "appended", b.appended, "duplicates", b.duplicates,
		"fsync_batches", b.batches, "elapsed", time.Since(start).Round(time.Millisecond))
	return err
}

type fileKey struct{ broadcast, track string }

// appendBatch collects entries per manifest file between fsyncs.
type appendBatch struct {
	dir     *manifest.Dir
	pending map[fileKey][]manifest.Entry
	order   []fileKey // files in first-seen order, for a deterministic flush
	n       int

	lines, appended, duplicates, batches int
}

func (b *appendBatch) run(dec *manifest.Decoder, batch int) error {
	for {
		if b.n > 0 && (b.n >= batch || !dec.LineBuffered()) {
			if err := b.flush(); err != nil {
				return err
			}
		}
		e, err := dec.Next()
		if err == io.EOF {
			return b.flush()
		}
		if err != nil {
			// Keep what came before the bad line.
			if ferr := b.flush(); ferr != nil {
				return ferr
			}
			var lineErr *manifest.LineError
			if errors.As(err, &lineErr) {
				return withExit(ExitDataErr, fmt.Errorf("standard input: %w", err))
			}
			return withExit(ExitIOErr, fmt.Errorf("read standard input: %w", err))
		}
		b.lines++
		e.New = nil
		k := fileKey{e.Broadcast, e.Track}
		if _, ok := b.pending[k]; !ok {
			b.order = append(b.order, k)
		}
		b.pending[k] = append(b.pending[k], e)
		b.n++
	}
}

func (b *appendBatch) flush() error {
	if b.n == 0 {
		return nil
	}
	for _, k := range b.order {
		res, err := b.dir.Append(k.broadcast, k.track, b.pending[k]...)
		if err != nil {
			return withExit(ExitIOErr, err)
		}
		b.appended += res.Appended
		b.duplicates += res.Duplicates
		delete(b.pending, k)
	}
	b.order, b.n = b.order[:0], 0
	b.batches++
	return nil
}

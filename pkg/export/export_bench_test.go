package export

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
)

// countingDiscard counts what an export writes.
type countingDiscard struct{ n *int64 }

func (w countingDiscard) Write(p []byte) (int, error) { *w.n += int64(len(p)); return len(p), nil }
func (countingDiscard) Close() error                  { return nil }

// BenchmarkExport exports a whole archive, muxed, to a discarding writer; its
// bytes/s is MB/s of output. The archive is BENCH_EXPORT_DIR (a run directory
// kept by scripts/bench-export.sh: manifests/, cas/, broadcast bench.hang) when
// set, else 20 s of 640x360 H.264 + AAC built by the test fixture.
func BenchmarkExport(b *testing.B) {
	opts := Options{Broadcast: "bench.hang"}
	if dir := os.Getenv("BENCH_EXPORT_DIR"); dir != "" {
		store, err := cas.OpenLocal(filepath.Join(dir, "cas"))
		if err != nil {
			b.Fatal(err)
		}
		opts.ManifestDir, opts.Store, opts.StoreRoot = filepath.Join(dir, "manifests"), store, filepath.Join(dir, "cas")
	} else {
		f := newFixture(b)
		f.session(t0, 0, encode(b, "video", "640x360", 20), encode(b, "audio", "", 20), nil)
		opts = f.options()
	}
	var written int64
	open := func(int, string) (io.WriteCloser, error) { return countingDiscard{&written}, nil }
	if _, err := Export(context.Background(), opts, open); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(written)
	for b.Loop() {
		if _, err := Export(context.Background(), opts, open); err != nil {
			b.Fatal(err)
		}
	}
}

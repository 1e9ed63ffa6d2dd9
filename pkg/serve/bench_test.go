package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
)

// BenchmarkSegmentTTFB measures the time to first byte of a segment over
// loopback HTTP (keep-alive), b.N distinct objects of BENCH_OBJECT_SIZE bytes
// (default 256 KiB, a 1 s GOP at 2 Mbit/s): each requested once while not yet
// verified (cold: read whole and re-hashed before the first byte), then once
// more (cached: served from its file). The store is under CAS_BENCH_DIR (or a
// temp dir); its files are in the page cache. Reported: p50 and p99 of each
// pass, in µs. Run by scripts/bench-serve.sh.
func BenchmarkSegmentTTFB(b *testing.B) {
	size := 256 << 10
	if s := os.Getenv("BENCH_OBJECT_SIZE"); s != "" {
		var err error
		if size, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	dir := os.Getenv("CAS_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "serve-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	store, err := cas.OpenLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]cas.ID, b.N)
	payload := make([]byte, size)
	for i := range ids {
		rand.Read(payload)
		res, err := store.Put(context.Background(), bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = res.ID
	}
	srv := httptest.NewServer(New(Options{ManifestDir: dir, Store: store}))
	defer srv.Close()
	client := srv.Client()

	ttfb := func(id cas.ID) time.Duration {
		var start, first time.Time
		trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET",
			srv.URL+"/objects/blake3/"+id.String()+".m4s", nil)
		start = time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != int64(size) {
			b.Fatalf("object %s: %s, %d bytes", id, resp.Status, n)
		}
		return first.Sub(start)
	}
	b.ResetTimer()
	for _, pass := range []string{"cold", "cached"} {
		times := make([]time.Duration, 0, b.N)
		for _, id := range ids {
			times = append(times, ttfb(id))
		}
		slices.Sort(times)
		p := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))].Microseconds()) }
		b.ReportMetric(p(0.50), pass+"-p50-µs")
		b.ReportMetric(p(0.99), pass+"-p99-µs")
	}
	b.ReportMetric(0, "ns/op") // the percentiles are the result; ns/op would mix both passes
}

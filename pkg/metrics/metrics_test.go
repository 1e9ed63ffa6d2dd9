package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestArchiveCounts(t *testing.T) {
	a := NewArchive()
	clock := time.Unix(1000, 0)
	a.now = func() time.Time { return clock }

	a.Announced("b1", true)
	clock = clock.Add(5 * time.Second)
	a.GroupStored("b1", "video", 100, 3*time.Millisecond)
	a.GroupStored("b1", "video", 50, time.Millisecond)
	a.GroupStored("b1", "audio", 10, time.Millisecond)
	a.Gap("b1", "video", "disconnected", 4)
	a.Gap("b1", "video", "disconnected", 1)
	a.StoreFailed("b1", "audio")
	a.Reconnected("b1")
	a.Reconnected("b1")
	a.Announced("b2", false)
	clock = clock.Add(7 * time.Second)

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"groups video", testutil.ToFloat64(a.groups.WithLabelValues("b1", "video")), 2},
		{"bytes video", testutil.ToFloat64(a.bytes.WithLabelValues("b1", "video")), 150},
		{"bytes audio", testutil.ToFloat64(a.bytes.WithLabelValues("b1", "audio")), 10},
		{"gap records", testutil.ToFloat64(a.gaps.WithLabelValues("b1", "video", "disconnected")), 2},
		{"gap groups", testutil.ToFloat64(a.gapGroups.WithLabelValues("b1", "video", "disconnected")), 5},
		{"store errors", testutil.ToFloat64(a.storeErrors.WithLabelValues("b1", "audio")), 1},
		{"reconnects", testutil.ToFloat64(a.reconnects.WithLabelValues("b1")), 2},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// The age runs from the last durable group (b1) or from the first event (b2).
	want := `
# HELP ec_broadcast_announced 1 while the relay announces the broadcast, as last heard by its worker; 0 after it unannounced it or did not announce it in time.
# TYPE ec_broadcast_announced gauge
ec_broadcast_announced{broadcast="b1"} 1
ec_broadcast_announced{broadcast="b2"} 0
# HELP ec_last_durable_group_age_seconds Seconds since the newest durable group of any track of the broadcast (before the first: since the worker first reported the broadcast announced or not).
# TYPE ec_last_durable_group_age_seconds gauge
ec_last_durable_group_age_seconds{broadcast="b1"} 7
ec_last_durable_group_age_seconds{broadcast="b2"} 7
`
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), "ec_broadcast_announced", "ec_last_durable_group_age_seconds"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(a, "ec_commit_duration_seconds"); n != 1 {
		t.Errorf("commit histogram: %d series", n)
	}

	// A stopped worker leaves no series behind; the other broadcast stays.
	a.Stopped("b1")
	for _, name := range []string{"ec_archived_groups_total", "ec_archived_bytes_total", "ec_gaps_total", "ec_gap_groups_total", "ec_store_errors_total", "ec_reconnects_total", "ec_commit_duration_seconds"} {
		if n := testutil.CollectAndCount(a, name); n != 0 {
			t.Errorf("after Stopped: %s has %d series", name, n)
		}
	}
	if n := testutil.CollectAndCount(a, "ec_broadcast_announced"); n != 1 {
		t.Errorf("after Stopped(b1): %d announced series, want b2's only", n)
	}
}

func TestServe(t *testing.T) {
	a := NewArchive()
	a.GroupStored("b", "t", 1, time.Millisecond)
	reg, err := NewRegistry(a)
	if err != nil {
		t.Fatal(err)
	}
	body := scrape(t, reg)
	for _, want := range []string{`ec_archived_groups_total{broadcast="b",track="t"} 1`, "go_goroutines ", "process_cpu_seconds_total "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// scrape serves g on a loopback port, GETs /metrics once, checks that an
// address in use is refused, and stops the server.
func scrape(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, g, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	if _, err := Listen(ln.Addr().String()); err == nil {
		t.Error("Listen on an address in use succeeded")
	}
	return string(body)
}

// TestFiles: the metrics files of two workers are served together; a file
// that cannot be parsed is reported and the others are still served.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"b1", "b2"} {
		a := NewArchive()
		a.GroupStored(b, "video", 7, time.Millisecond)
		a.Announced(b, true)
		reg, err := NewWorkerRegistry(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(filepath.Join(dir, b+".prom"), reg); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.prom"), []byte("ec_x{ 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b3.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}

	mfs, err := Files(dir).Gather()
	if err == nil || !strings.Contains(err.Error(), "bad.prom") {
		t.Errorf("Gather error = %v, want one naming bad.prom", err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] += len(mf.GetMetric())
	}
	for _, name := range []string{"ec_archived_groups_total", "ec_archived_bytes_total", "ec_broadcast_announced", "ec_commit_duration_seconds"} {
		if series[name] != 2 {
			t.Errorf("%s: %d series, want one per worker file", name, series[name])
		}
	}
	if series["go_goroutines"] != 0 {
		t.Error("a worker file carries the worker's Go metrics; they would clash at the supervisor")
	}

	// Served beside the supervisor's own registry, despite the bad file.
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	body := scrape(t, prometheus.Gatherers{reg, Files(dir)})
	for _, want := range []string{`ec_archived_groups_total{broadcast="b1",track="video"} 1`, `ec_archived_groups_total{broadcast="b2",track="video"} 1`, "go_goroutines "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

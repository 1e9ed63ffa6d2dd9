//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsRealRelay scrapes wt-archive's /metrics while it archives a real
// publisher through the real moq-relay: the counters move, a relay restart is
// counted as a reconnect (and its missed groups as a gap), and the condition
// of the ECIngestionStopped alert (pkg/metrics/alerts.yml) becomes true when
// the publisher stops sending while the relay still announces the broadcast,
// and false again once the broadcast is unannounced.
func TestMetricsRealRelay(t *testing.T) {
	ecNode := buildBinary(t, "ec-node")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	const broadcast, video = "metrics.hang", "0.m4s"
	relay, pub := startLive(t, ctx, dir, broadcast)

	addr := freeTCPAddr(t)
	out := filepath.Join(dir, "archive")
	// A back-fill age of 2 s, shorter than the relay's 3 s outage and the
	// publisher's reconnect, leaves gaps (reason expired) for the gap counter.
	archiver := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", broadcast,
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "5s", "--backfill-max-age", "2s",
		"--output-dir", out+"/cas", "--manifest-dir", out+"/manifests", "--metrics-listen", addr)
	archiver.Stderr = logFile(t, dir, "wt-archive.log")
	if err := archiver.Start(); err != nil {
		t.Fatal(err)
	}
	defer archiver.Process.Kill()
	defer func() {
		if t.Failed() {
			t.Logf("wt-archive log:\n%s", readFile(dir, "wt-archive.log"))
		}
	}()

	b := `broadcast="` + broadcast + `"`
	videoGroups := func(m scrape) float64 { return m.sum("ec_archived_groups_total", b, `track="`+video+`"`) }
	m := waitMetrics(t, addr, "3 video groups in the metrics", func(m scrape) bool {
		return videoGroups(m) >= 3 && m.sum("ec_broadcast_announced", b) == 1
	}, "ec_archived_groups_total", "ec_broadcast_announced")
	for _, name := range []string{"ec_archived_bytes_total", "ec_commit_duration_seconds_count", "go_goroutines", "process_resident_memory_bytes"} {
		if m.sum(name) <= 0 {
			t.Errorf("%s = %v, want > 0", name, m.sum(name))
		}
	}
	before := videoGroups(m)

	if err := relay.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the broadcast goes on without a relay
	if err := relay.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	m = waitMetrics(t, addr, "the restart counted and archiving resumed", func(m scrape) bool {
		return m.sum("ec_reconnects_total", b) >= 1 && videoGroups(m) >= before+3 && m.sum("ec_gaps_total", b, `reason="expired"`) >= 1
	}, "ec_reconnects_total", "ec_archived_groups_total", "ec_gaps_total")
	t.Logf("after the relay restart: %s", m.show("ec_reconnects_total", "ec_gaps_total"))

	// The condition of ECIngestionStopped, with a threshold of a few of the
	// publisher's 1 s GOPs.
	const stalled = 4
	ingestionStopped := func(m scrape) bool {
		return m.sum("ec_last_durable_group_age_seconds", b) > stalled && m.sum("ec_broadcast_announced", b) == 1
	}
	if ingestionStopped(m) {
		t.Fatalf("ingestion-stopped condition true while archiving: %s", m.show("ec_last_durable_group_age_seconds", "ec_broadcast_announced"))
	}
	if err := pub.Pause(); err != nil {
		t.Fatal(err)
	}
	m = waitMetrics(t, addr, "the ingestion-stopped condition", ingestionStopped,
		"ec_last_durable_group_age_seconds", "ec_broadcast_announced")
	t.Logf("publisher paused: %s", m.show("ec_last_durable_group_age_seconds", "ec_broadcast_announced"))

	// A broadcast that ended is not an ingestion failure.
	if err := pub.Kill(); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, addr, "the broadcast unannounced", func(m scrape) bool {
		return m.sum("ec_broadcast_announced", b) == 0 && !ingestionStopped(m)
	}, "ec_broadcast_announced")

	if err := archiver.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := archiver.Wait(); err != nil {
		t.Fatalf("wt-archive: %v", err)
	}
}

// freeTCPAddr returns a loopback address that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape is one /metrics response: its sample lines, "name{labels} value".
type scrape []string

// waitMetrics scrapes http://addr/metrics until cond holds (for at most a
// minute) and returns that scrape; a failure shows the samples of the named
// metrics, or why the scrape failed.
func waitMetrics(t *testing.T, addr, what string, cond func(scrape) bool, show ...string) scrape {
	t.Helper()
	var m scrape
	waitFor(t, what, time.Minute, func() (bool, string) {
		var err error
		if m, err = scrapeMetrics(addr); err != nil {
			return false, err.Error()
		}
		return cond(m), m.show(show...)
	})
	return m
}

func scrapeMetrics(addr string) (scrape, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var m scrape
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			m = append(m, line)
		}
	}
	return m, sc.Err()
}

// sum adds the values of the samples of metric name whose labels include all
// of labels (each `key="value"`).
func (m scrape) sum(name string, labels ...string) float64 {
	total := 0.0
	for _, line := range m {
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, rest, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil && match {
			total += v
		}
	}
	return total
}

// count returns the number of samples whose line contains s.
func (m scrape) count(s string) int {
	n := 0
	for _, line := range m {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// show returns the samples of the named metrics, for messages.
func (m scrape) show(names ...string) string {
	var lines []string
	for _, line := range m {
		for _, n := range names {
			if strings.HasPrefix(line, n+"{") || strings.HasPrefix(line, n+" ") {
				lines = append(lines, line)
			}
		}
	}
	return fmt.Sprint(lines)
}

// TestMetricsArchiveAuto: archive-auto's in-process workers report to its one
// endpoint, per broadcast; a broadcast that leaves discovery leaves no series
// behind (label cardinality stays bounded by the live broadcasts), and a relay
// restart is counted for the ones that go on.
func TestMetricsArchiveAuto(t *testing.T) {
	f := newArchiveFixture(t)
	dir := newDirectoryServer(t)
	url := f.relay.URL("anon")
	for _, name := range []string{"e2e-a", "e2e-b"} {
		f.publish(name)
		dir.set(name, url)
	}
	addr := freeTCPAddr(t)
	startArchiveAuto(t, "--directory", dir.URL, "--metrics-listen", addr)
	a, bb := `broadcast="e2e-a"`, `broadcast="e2e-b"`
	waitMetrics(t, addr, "both broadcasts archiving", func(m scrape) bool {
		return m.sum("ec_archived_groups_total", a) >= 2 && m.sum("ec_archived_groups_total", bb) >= 2 &&
			m.sum("ec_broadcast_announced", a) == 1 && m.sum("ec_broadcast_announced", bb) == 1
	}, "ec_archived_groups_total", "ec_broadcast_announced")

	dir.set("e2e-b", "")
	m := waitMetrics(t, addr, "e2e-b's series gone", func(m scrape) bool { return m.count(bb) == 0 }, "ec_broadcast_announced")
	if m.sum("ec_archived_groups_total", a) < 2 {
		t.Errorf("e2e-a's series went too: %s", m.show("ec_archived_groups_total"))
	}

	f.restartRelay()
	waitMetrics(t, addr, "the relay restart counted for e2e-a", func(m scrape) bool {
		return m.sum("ec_reconnects_total", a) >= 1
	}, "ec_reconnects_total")
}

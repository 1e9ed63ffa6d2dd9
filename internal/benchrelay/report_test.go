package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := percentile(v, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A run of 10 s: two groups durable inside the window (one video, one
// audio), one before it; the reference wrote both media groups.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "snapshots.jsonl"),
		`{"unix_us":10000000,"loadavg":"1 1 1","busy_s":100,"udp_rcvbuf_errors":7,"procs":[{"role":"ours","pid":1,"cpu_s":1},{"role":"ref","pid":2,"cpu_s":2},{"role":"relay","pid":3,"cpu_s":0,"udp_drops":4}]}
{"unix_us":20000000,"loadavg":"2 2 2","busy_s":115,"udp_rcvbuf_errors":10,"procs":[{"role":"ours","pid":1,"cpu_s":1.5},{"role":"ref","pid":2,"cpu_s":3},{"role":"relay","pid":3,"cpu_s":0.25,"rss_kb":2048,"udp_drops":6}]}
`)
	writeFile(t, filepath.Join(dir, "ours", "b", "archiver.log"),
		`{"msg":"connected","broadcast":"b"}
{"msg":"group durable","broadcast":"b","track":"v","group":1,"bytes":999,"first_byte_unix_us":8000000,"last_byte_unix_us":9000000,"durable_unix_us":9990000}
{"msg":"group durable","broadcast":"b","track":"v","group":2,"bytes":1000000,"first_byte_unix_us":9000000,"last_byte_unix_us":10000000,"durable_unix_us":10010000}
{"msg":"group durable","broadcast":"b","track":"t","group":0,"bytes":0,"first_byte_unix_us":1,"last_byte_unix_us":1,"durable_unix_us":19000000}
{"msg":"group durable","broadcast":"b","track":"v","group":3,"bytes":0,"first_byte_unix_us":1,"last_byte_unix_us":1,"durable_unix_us":19000000}
{"msg":"group durable","broadcast":"b","track":"a","group":2,"bytes":250000,"first_byte_unix_us":9000000,"last_byte_unix_us":10000000,"durable_unix_us":10030000}
`)
	writeFile(t, filepath.Join(dir, "ours", "b", "manifests", "b", "v.jsonl"),
		`{"kind":"group","broadcast":"b","track":"v","group":2,"timescale":15360,"timestamps":[15360,15872]}
{"kind":"group","broadcast":"b","track":"v","group":3,"timescale":15360,"timestamps":[61440]}
`)
	writeFile(t, filepath.Join(dir, "ours", "b", "manifests", "b", "t.jsonl"),
		`{"kind":"group","broadcast":"b","track":"t","group":0,"timescale":1000,"timestamps":[123456]}
`)
	writeFile(t, filepath.Join(dir, "ours", "b", "manifests", "b", "a.jsonl"),
		`{"kind":"gap","broadcast":"b","track":"a","first":0,"last":1,"reason":"skipped","received_unix_ms":9000}
{"kind":"gap","broadcast":"b","track":"a","first":3,"last":3,"reason":"reset","received_unix_ms":15000}
{"kind":"group","broadcast":"b","track":"a","group":2,"timescale":48000,"timestamps":[48000]}
`)
	writeFile(t, filepath.Join(dir, "ours", "b", "manifests", "b", "catalog.json.jsonl"),
		`{"kind":"gap","broadcast":"b","track":"catalog.json","first":4,"last":4,"reason":"skipped","received_unix_ms":12000}
`)
	writeFile(t, filepath.Join(dir, "ref", "b", "events.jsonl"),
		`{"label":"b","written_unix_us":10020000,"track_id":1,"timescale":15360,"decode_time":15360,"bytes":1000100}
{"label":"b","written_unix_us":10020000,"track_id":2,"timescale":48000,"decode_time":48000,"bytes":250100}
{"label":"b","written_unix_us":15000000,"track_id":1,"timescale":15360,"decode_time":30720,"bytes":7}
{"label":"b","written_unix_us":20000000,"track_id":1,"timescale":15360,"decode_time":46080,"bytes":1}
`)
	r, err := loadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	ours, ref := r.sides()
	if want := (side{bytes: 1250000, groups: 4, cpu: 0.5}); ours != want {
		t.Errorf("ours = %+v, want %+v", ours, want)
	}
	if want := (side{bytes: 1250207, groups: 3, cpu: 1}); ref != want {
		t.Errorf("ref = %+v, want %+v", ref, want)
	}
	if got := ours.cpuMsPerMbit(); got != 50 {
		t.Errorf("ours CPU per Mbit = %v ms, want 50", got)
	}
	// The reference's fragment at 2 s is media ours never archived; ours'
	// video group 3 the reference never wrote (track t it does not export).
	if fromOurs, fromRef := r.missing(); fromOurs != 1 || fromRef != 1 {
		t.Errorf("missing = %d from ours, %d from the reference; want 1, 1", fromOurs, fromRef)
	}
	durable, written, diff := r.sameGroups()
	// Both groups match by decode time (1 s), though their timescales differ.
	for _, c := range []struct {
		name      string
		got, want []float64
	}{
		{"durable", durable, []float64{10, 30}},
		{"written", written, []float64{20, 20}},
		{"diff", diff, []float64{-10, 10}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var out bytes.Buffer
	r.write(&out)
	for _, want := range []string{"Window 10.0 s", "| a | 1 | 1030.0 / 1030.0 | 30.0 / 30.0 / 30.0 |", "relay 0.25 s (2.5 %)", "(2 matched", "gap records [1 catalog skipped, 1 reset]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// summary: of the 4 groups durable in the window (a run of 10 s), the gap
	// record in it, CPU and memory per role.
	sum := r.summary()
	if sum.Broadcasts != 1 || sum.Groups != 4 || sum.GroupsPerS != 0.4 || sum.Holes != 0 || len(sum.Gaps) != 2 || sum.Gaps["reset"] != 1 || sum.Gaps["catalog skipped"] != 1 ||
		sum.CPUPercent["relay"] != 2.5 || sum.MachinePercent != 150 || sum.UDPRcvbufErrors != 3 || sum.UDPDrops["relay"] != 2 || sum.CPUPercent["ours"] != 5 || sum.RSSMB["relay"] != 2 || sum.DurableP50Ms != 30 || sum.DiffP50Ms != -10 {
		t.Errorf("summary = %+v", sum)
	}
}

// Sequence numbers missing between a track's durable groups count as holes,
// per track and broadcast.
func TestSummaryHoles(t *testing.T) {
	g := func(b, track string, seq uint64) durableGroup {
		return durableGroup{Broadcast: b, Track: track, Group: seq, Bytes: 1, LastByteUs: 1, DurableUs: 2}
	}
	r := &run{t0: snapshot{UnixUs: 0}, t1: snapshot{UnixUs: 1e6},
		groups: []durableGroup{g("b", "v", 7), g("b", "v", 4), g("b", "v", 5), g("b", "a", 9), g("c", "v", 1), g("c", "v", 3), g("b", "a", 10),
			g("b", "catalog.json", 1), g("b", "catalog.json", 5)}}
	if sum := r.summary(); sum.Holes != 2 || sum.Broadcasts != 2 || sum.Groups != 9 {
		t.Errorf("summary = %+v; want 2 holes (b/v 6, c/v 2; catalog.json's are gap records), 2 broadcasts, 9 groups", sum)
	}
}

func TestReportNeedsBothSubscribers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "snapshots.jsonl"), `{"unix_us":1}`+"\n"+`{"unix_us":2}`+"\n")
	writeFile(t, filepath.Join(dir, "ours", "b", "archiver.log"), "")
	if _, err := loadRun(dir); err == nil || !strings.Contains(err.Error(), "ref/") {
		t.Fatalf("err = %v, want a missing ref/ error", err)
	}
	writeFile(t, filepath.Join(dir, "ours", "b", "archiver.log"), "not json\n")
	writeFile(t, filepath.Join(dir, "ref", "b", "events.jsonl"), "")
	if _, err := loadRun(dir); err == nil || !strings.Contains(err.Error(), "archiver.log:1") {
		t.Fatalf("err = %v, want a parse error naming the line", err)
	}
}

// The reference exports a subset of the broadcasts: ours' groups of the others
// are not counted as media it never wrote.
func TestMissingOnlyExportedBroadcasts(t *testing.T) {
	g := func(b string, seq uint64) durableGroup { return durableGroup{Broadcast: b, Track: "v", Group: seq} }
	r := &run{
		groups:  []durableGroup{g("b", 1), g("b", 2), g("c", 1)},
		starts:  map[groupKey]uint64{{"b", "v", 1}: 1e6, {"b", "v", 2}: 2e6, {"c", "v", 1}: 1e6},
		written: map[mediaKey]int64{{"b", 1e6}: 5},
	}
	if _, fromRef := r.missing(); fromRef != 1 {
		t.Errorf("fromRef = %d, want 1 (b's group 2, not c's)", fromRef)
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A run directory, as scripts/bench-relay.sh lays it out:
//
//	snapshots.jsonl                 `snap` lines; the first and last bound the window
//	ours/<broadcast>/archiver.log   wt-archive's JSON log at debug level
//	ours/<broadcast>/manifests/     its manifests
//	ref/<broadcast>/events.jsonl    `watch` events of moq export's output

// maxLine bounds one log or manifest line.
const maxLine = 4 << 20

// durableGroup is the archiver's "group durable" debug line (pkg/archive).
type durableGroup struct {
	Msg         string `json:"msg"`
	Broadcast   string `json:"broadcast"`
	Track       string `json:"track"`
	Group       uint64 `json:"group"`
	Bytes       int64  `json:"bytes"`
	FirstByteUs int64  `json:"first_byte_unix_us"`
	LastByteUs  int64  `json:"last_byte_unix_us"`
	DurableUs   int64  `json:"durable_unix_us"`
}

// manifestGroup is the part of a manifest line that ties a group to the
// reference's fragment (the first frame's timestamp), or a gap record.
type manifestGroup struct {
	Kind       string   `json:"kind"`
	Reason     string   `json:"reason"` // of a gap
	ReceivedMs int64    `json:"received_unix_ms"`
	Broadcast  string   `json:"broadcast"`
	Track      string   `json:"track"`
	Group      uint64   `json:"group"`
	Timescale  uint64   `json:"timescale"`
	Timestamps []uint64 `json:"timestamps"`
}

type groupKey struct {
	broadcast, track string
	group            uint64
}

// mediaKey names a group's media by its broadcast and first decode time (µs),
// which the archiver's manifest and the reference's fMP4 share.
type mediaKey struct {
	broadcast string
	startUs   uint64
}

func reportMain(args []string) error {
	fset := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fset.String("dir", "", "run directory")
	asJSON := fset.Bool("json", false, "print one JSON object of summary figures (a row of scripts/load.sh) instead of tables")
	if err := fset.Parse(args); err != nil {
		return err
	}
	r, err := loadRun(*dir)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r.summary())
	}
	r.write(os.Stdout)
	return nil
}

type run struct {
	t0, t1     snapshot
	groups     []durableGroup // archived in the window
	starts     map[groupKey]uint64
	fragments  []fragment         // written by the reference in the window
	written    map[mediaKey]int64 // every reference fragment: when written
	archived   map[mediaKey]bool  // every group ours archived
	gaps       map[string]int     // gap records written in the window, by reason ("catalog <reason>" on catalog.json)
	ourCPU     float64
	refCPU     float64
	otherRoles map[string]float64
	procs      map[string]int   // processes per role
	rssKB      map[string]int64 // resident memory per role at the window's end
	udpDrops   map[string]int64 // datagrams dropped on each role's sockets in the window
}

func loadRun(dir string) (*run, error) {
	snaps, err := readJSONLines[snapshot](filepath.Join(dir, "snapshots.jsonl"))
	if err != nil {
		return nil, err
	}
	if len(snaps) < 2 {
		return nil, fmt.Errorf("%s: want two snapshots, have %d", dir, len(snaps))
	}
	r := &run{t0: snaps[0], t1: snaps[len(snaps)-1], starts: map[groupKey]uint64{}, written: map[mediaKey]int64{},
		archived: map[mediaKey]bool{}, gaps: map[string]int{}, otherRoles: map[string]float64{},
		procs: map[string]int{}, rssKB: map[string]int64{}, udpDrops: map[string]int64{}}
	if r.t1.UnixUs <= r.t0.UnixUs {
		return nil, errors.New("snapshots do not advance")
	}
	r.cpu()
	in := func(us int64) bool { return us >= r.t0.UnixUs && us < r.t1.UnixUs }

	logs, _ := filepath.Glob(filepath.Join(dir, "ours", "*", "archiver.log"))
	if len(logs) == 0 {
		return nil, fmt.Errorf("%s: no ours/*/archiver.log", dir)
	}
	for _, p := range logs {
		lines, err := readJSONLines[durableGroup](p)
		if err != nil {
			return nil, err
		}
		for _, g := range lines {
			if g.Msg == "group durable" && in(g.DurableUs) {
				r.groups = append(r.groups, g)
			}
		}
		err = filepath.WalkDir(filepath.Join(filepath.Dir(p), "manifests"), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jsonl") {
				return err
			}
			entries, err := readJSONLines[manifestGroup](path)
			for _, e := range entries {
				switch {
				case e.Kind == "gap" && in(e.ReceivedMs*1e3):
					// Superseded catalog groups are skipped by design of a
					// live-edge subscription; keep them apart from media loss.
					if e.Track == "catalog.json" {
						r.gaps["catalog "+e.Reason]++
					} else {
						r.gaps[e.Reason]++
					}
				case e.Kind == "group" && e.Timescale > 0 && len(e.Timestamps) > 0:
					start := toMicros(e.Timestamps[0], e.Timescale)
					r.starts[groupKey{e.Broadcast, e.Track, e.Group}] = start
					r.archived[mediaKey{e.Broadcast, start}] = true
				}
			}
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // no manifests: nothing to match
			return nil, err
		}
	}

	events, _ := filepath.Glob(filepath.Join(dir, "ref", "*", "events.jsonl"))
	if len(events) == 0 {
		return nil, fmt.Errorf("%s: no ref/*/events.jsonl", dir)
	}
	for _, p := range events {
		frags, err := readJSONLines[fragment](p)
		if err != nil {
			return nil, err
		}
		for _, f := range frags {
			if f.Timescale > 0 {
				r.written[mediaKey{f.Label, toMicros(f.DecodeTime, uint64(f.Timescale))}] = f.WrittenUnixUs
			}
			if in(f.WrittenUnixUs) && f.Bytes > 0 {
				r.fragments = append(r.fragments, f)
			}
		}
	}
	return r, nil
}

// cpu sums each role's CPU seconds and UDP drops between the first and last
// snapshot, and its resident memory at the last.
func (r *run) cpu() {
	before := map[int]procTime{}
	for _, p := range r.t0.Procs {
		before[p.PID] = p
	}
	for _, p := range r.t1.Procs {
		d := p.CPUs - before[p.PID].CPUs
		r.procs[p.Role]++
		r.rssKB[p.Role] += p.RSSKB
		r.udpDrops[p.Role] += p.UDPDrops - before[p.PID].UDPDrops
		switch p.Role {
		case "ours":
			r.ourCPU += d
		case "ref":
			r.refCPU += d
		default:
			r.otherRoles[p.Role] += d
		}
	}
}

func toMicros(t, timescale uint64) uint64 {
	return t/timescale*1e6 + t%timescale*1e6/timescale
}

// side is one subscriber's throughput over the window.
type side struct {
	bytes, groups int64
	cpu           float64
}

func (s side) mbit() float64         { return float64(s.bytes) * 8 / 1e6 }
func (s side) cpuMsPerMbit() float64 { return s.cpu * 1e3 / s.mbit() }

// sides sums what each subscriber completed within the window: groups made
// durable by ours, fragments (one per group) written by the reference.
func (r *run) sides() (ours, ref side) {
	ours.cpu, ref.cpu = r.ourCPU, r.refCPU
	for _, g := range r.groups {
		ours.bytes += g.Bytes
		ours.groups++
	}
	for _, f := range r.fragments {
		ref.bytes += f.Bytes
		ref.groups++
	}
	return ours, ref
}

// sameGroups pairs the groups ours archived in the window with the reference's
// fragments of the same media, in ms after ours read the group's last byte
// (which stands in for when the relay delivered the group's end to both):
// when ours had it durable, when the reference wrote it, and the difference.
func (r *run) sameGroups() (oursDurable, refWritten, diff []float64) {
	for _, g := range r.groups {
		start, ok := r.starts[groupKey{g.Broadcast, g.Track, g.Group}]
		if !ok {
			continue
		}
		at, ok := r.written[mediaKey{g.Broadcast, start}]
		if !ok {
			continue
		}
		oursDurable = append(oursDurable, ms(g.DurableUs-g.LastByteUs))
		refWritten = append(refWritten, ms(at-g.LastByteUs))
		diff = append(diff, ms(g.DurableUs-at))
	}
	return oursDurable, refWritten, diff
}

// missing counts, within the window, the reference's fragments whose media
// ours never archived and ours' groups the reference never wrote, the latter
// only on tracks of broadcasts the reference exports at all (not catalog or
// timeline tracks, nor broadcasts it was not given).
func (r *run) missing() (fromOurs, fromRef int) {
	for _, f := range r.fragments {
		if f.Timescale > 0 && !r.archived[mediaKey{f.Label, toMicros(f.DecodeTime, uint64(f.Timescale))}] {
			fromOurs++
		}
	}
	type track struct{ broadcast, name string }
	exported := map[track]bool{}
	var unwritten []track
	for _, g := range r.groups {
		if start, ok := r.starts[groupKey{g.Broadcast, g.Track, g.Group}]; ok {
			if _, ok := r.written[mediaKey{g.Broadcast, start}]; ok {
				exported[track{g.Broadcast, g.Track}] = true
			} else {
				unwritten = append(unwritten, track{g.Broadcast, g.Track})
			}
		}
	}
	for _, t := range unwritten {
		if exported[t] {
			fromRef++
		}
	}
	return fromOurs, fromRef
}

func (r *run) write(w io.Writer) {
	secs := float64(r.t1.UnixUs-r.t0.UnixUs) / 1e6
	ours, ref := r.sides()
	fmt.Fprintf(w, "Window %.1f s; load average %s at its start, %s at its end.\n\n", secs, r.t0.LoadAvg, r.t1.LoadAvg)
	fmt.Fprintln(w, "| subscriber | MB/s | Mbit/s | groups/s | CPU s | CPU % of a core | CPU ms per Mbit |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	row := func(name string, s side) {
		fmt.Fprintf(w, "| %s | %.2f | %.1f | %.1f | %.2f | %.1f | %.2f |\n", name,
			float64(s.bytes)/secs/1e6, s.mbit()/secs, float64(s.groups)/secs, s.cpu, s.cpu/secs*100, s.cpuMsPerMbit())
	}
	row("ours: `ec-node wt-archive` (CAS + manifest, fsynced)", ours)
	row("reference: `moq export fmp4` (to a pipe)", ref)
	bytesRatio := float64(ours.bytes) / float64(ref.bytes)
	fmt.Fprintf(w, "| ratio ours/reference | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", bytesRatio, bytesRatio,
		float64(ours.groups)/float64(ref.groups), ours.cpu/ref.cpu, ours.cpu/ref.cpu, ours.cpuMsPerMbit()/ref.cpuMsPerMbit())
	roles := make([]string, 0, len(r.otherRoles))
	for role := range r.otherRoles {
		roles = append(roles, role)
	}
	slices.Sort(roles)
	var others []string
	for _, role := range roles {
		others = append(others, fmt.Sprintf("%s %.2f s (%.1f %%)", role, r.otherRoles[role], r.otherRoles[role]/secs*100))
	}
	fmt.Fprintf(w, "\nOther processes, CPU in the window (%% of a core): %s.\n", strings.Join(others, ", "))
	fromOurs, fromRef := r.missing()
	reasons := make([]string, 0, len(r.gaps))
	for reason, n := range r.gaps {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, reason))
	}
	slices.Sort(reasons)
	fmt.Fprintf(w, "\nCompleteness in the window: ours wrote gap records %s; of the reference's %d fragments, %d are media ours never archived; of ours' groups, %d are media the reference never wrote.\n",
		"["+strings.Join(reasons, ", ")+"]", len(r.fragments), fromOurs, fromRef)

	// Per track: a track's groups last as long as its publisher keeps them open
	// (1 s for media here, the whole run for a timeline), which first-byte
	// latencies inherit; pooling tracks would hide that.
	fmt.Fprintln(w, "\nOurs, per group archived in the window, ms (nearest-rank percentiles):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| track | groups | first byte → durable p50 / p99 | last byte → durable p50 / p99 / max |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	byTrack := map[string][]durableGroup{}
	for _, g := range r.groups {
		byTrack[g.Track] = append(byTrack[g.Track], g)
	}
	names := make([]string, 0, len(byTrack))
	for n := range byTrack {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var first, last []float64
		for _, g := range byTrack[n] {
			first = append(first, ms(g.DurableUs-g.FirstByteUs))
			last = append(last, ms(g.DurableUs-g.LastByteUs))
		}
		fmt.Fprintf(w, "| %s | %d | %.1f / %.1f | %.1f / %.1f / %.1f |\n", n, len(first),
			percentile(first, 50), percentile(first, 99), percentile(last, 50), percentile(last, 99), percentile(last, 100))
	}

	oursDurable, refWritten, diff := r.sameGroups()
	fmt.Fprintf(w, "\nThe same media groups at both subscribers (%d matched by first decode time), ms after ours read the group's last byte:\n\n", len(diff))
	fmt.Fprintln(w, "| | p50 | p99 | max |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, l := range []struct {
		name string
		v    []float64
	}{
		{"ours: durable (object + manifest line fsynced)", oursDurable},
		{"reference: fragment written to its pipe", refWritten},
		{"ours durable minus reference written", diff},
	} {
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f |\n", l.name, percentile(l.v, 50), percentile(l.v, 99), percentile(l.v, 100))
	}
}

// summary is one run's figures, for a sweep over many runs.
type summary struct {
	WindowS          float64            `json:"window_s"`
	LoadAvgStart     string             `json:"loadavg_start"`
	LoadAvgEnd       string             `json:"loadavg_end"`
	Broadcasts       int                `json:"broadcasts"` // with a group durable in the window
	Groups           int64              `json:"groups"`
	GroupsPerS       float64            `json:"groups_per_s"`
	MBPerS           float64            `json:"mb_per_s"`
	Gaps             map[string]int     `json:"gaps"`                // gap records in the window, by reason ("catalog <reason>" on catalog.json)
	Holes            int                `json:"holes"`               // sequence numbers missing between a track's groups durable in the window, catalog.json aside
	MachinePercent   float64            `json:"machine_cpu_percent"` // every process on the machine, of one core
	UDPRcvbufErrors  int64              `json:"udp_rcvbuf_errors"`   // datagrams dropped in the window, machine-wide
	UDPDrops         map[string]int64   `json:"udp_drops"`           // of those, on each role's sockets
	CPUPercent       map[string]float64 `json:"cpu_percent"`         // per role, of one core
	Procs            map[string]int     `json:"procs"`
	RSSMB            map[string]float64 `json:"rss_mb"`         // per role, summed, at the window's end
	DurableP50Ms     float64            `json:"durable_p50_ms"` // ours: group's last byte read → durable
	DurableP99Ms     float64            `json:"durable_p99_ms"`
	DurableMaxMs     float64            `json:"durable_max_ms"`
	OursCPUMsPerMbit float64            `json:"ours_cpu_ms_per_mbit"`
	RefMbitPerS      float64            `json:"ref_mbit_per_s"`
	RefCPUMsPerMbit  float64            `json:"ref_cpu_ms_per_mbit"`
	DiffP50Ms        float64            `json:"durable_minus_ref_written_p50_ms"` // the same groups at both
}

func (r *run) summary() summary {
	secs := float64(r.t1.UnixUs-r.t0.UnixUs) / 1e6
	ours, ref := r.sides()
	s := summary{WindowS: secs, LoadAvgStart: r.t0.LoadAvg, LoadAvgEnd: r.t1.LoadAvg, Groups: ours.groups,
		MachinePercent: (r.t1.BusyS - r.t0.BusyS) / secs * 100, UDPRcvbufErrors: r.t1.UDPRcvbufErrors - r.t0.UDPRcvbufErrors, GroupsPerS: float64(ours.groups) / secs, MBPerS: float64(ours.bytes) / secs / 1e6, Gaps: r.gaps,
		CPUPercent: map[string]float64{"ours": r.ourCPU / secs * 100, "ref": r.refCPU / secs * 100},
		Procs:      r.procs, RSSMB: map[string]float64{}, UDPDrops: r.udpDrops, OursCPUMsPerMbit: ours.cpuMsPerMbit(),
		RefMbitPerS: ref.mbit() / secs, RefCPUMsPerMbit: ref.cpuMsPerMbit()}
	for role, cpu := range r.otherRoles {
		s.CPUPercent[role] = cpu / secs * 100
	}
	for role, kb := range r.rssKB {
		s.RSSMB[role] = float64(kb) / 1024
	}
	seqs := map[[2]string][]uint64{}
	var latency []float64
	for _, g := range r.groups {
		if g.Track != "catalog.json" {
			k := [2]string{g.Broadcast, g.Track}
			seqs[k] = append(seqs[k], g.Group)
		}
		latency = append(latency, ms(g.DurableUs-g.LastByteUs))
	}
	broadcasts := map[string]bool{}
	for k, v := range seqs {
		broadcasts[k[0]] = true
		slices.Sort(v)
		for i := 1; i < len(v); i++ {
			if v[i] > v[i-1]+1 {
				s.Holes += int(v[i] - v[i-1] - 1)
			}
		}
	}
	s.Broadcasts = len(broadcasts)
	s.DurableP50Ms, s.DurableP99Ms, s.DurableMaxMs = percentile(latency, 50), percentile(latency, 99), percentile(latency, 100)
	_, _, diff := r.sameGroups()
	s.DiffP50Ms = percentile(diff, 50)
	return s
}

func ms(us int64) float64 { return float64(us) / 1e3 }

// percentile is the nearest-rank percentile p (0 < p <= 100) of v; NaN when v is empty.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// readJSONLines decodes a file of JSON lines.
func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

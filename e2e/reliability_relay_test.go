//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestReliabilityRelayRestarts kills the real moq-relay mid-stream and starts
// it again (3 times, 20 in soak mode) while wt-archive runs. It measures the
// time from the relay being back to wt-archive's next "connected" log line and
// to the next video group in the manifest, and checks that every missed range
// is a gap record and nothing is archived twice.
func TestReliabilityRelayRestarts(t *testing.T) {
	restarts := bySoak(3, 20)
	ctx, cancel := context.WithTimeout(context.Background(), bySoak(2*time.Minute, 15*time.Minute))
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "relayfault.hang")
	root := filepath.Join(dir, "archive")
	arch := newArchiver(t, dir, "wt-archive", relay.URL("anon"), "relayfault.hang", root+"/cas", root+"/manifests",
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "10s")
	arch.start()
	video := func() []manifest.Entry {
		return readManifests(t, root+"/manifests")[trackKey{"relayfault.hang", videoTrack}]
	}
	waitFor(t, "the first video groups", time.Minute, func() (bool, string) { return groupCount(video()) >= 2, "" })

	var toConnected, toGroup []time.Duration
	var faults []time.Time
	for i := range restarts {
		if ctx.Err() != nil {
			t.Fatalf("out of time after %d restarts", i)
		}
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond) // mid-stream
		high := highestGroup(video())
		connects := len(logTimes(arch.logText(), "msg=connected"))
		if err := relay.Kill(); err != nil {
			t.Fatal(err)
		}
		faults = append(faults, time.Now())
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		if err := relay.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		waitFor(t, fmt.Sprintf("wt-archive reconnected after restart %d", i+1), time.Minute, func() (bool, string) {
			return len(logTimes(arch.logText(), "msg=connected")) > connects, ""
		})
		toConnected = append(toConnected, logTimes(arch.logText(), "msg=connected")[connects].Sub(back))
		var first time.Time
		waitFor(t, fmt.Sprintf("a new video group after restart %d", i+1), time.Minute, func() (bool, string) {
			first = firstGroupAfter(video(), high)
			return !first.IsZero(), ""
		})
		toGroup = append(toGroup, first.Sub(back))
	}
	if err := arch.stop(); err != nil {
		t.Fatalf("wt-archive: %v\n%s", err, lastLines(arch.logText(), 20))
	}
	if n := checkStores(t, root+"/cas", root+"/manifests"); n != 0 {
		t.Fatalf("%d torn lines after a clean stop", n)
	}
	manifests := readManifests(t, root+"/manifests")
	v := account(t, videoTrack, manifests[trackKey{"relayfault.hang", videoTrack}])
	for k, entries := range manifests {
		account(t, k.track, entries)
	}
	lost, bound, outages := 0, 0, lossPerOutage(v, faults)
	for _, o := range outages {
		lost += o.lost
		bound += o.bound
	}
	figure(t, "relay restart", "%d relay kill+restarts survived; reconnect (relay back -> msg=connected) p50 %v p99 %v; relay back -> first new video group archived p50 %v p99 %v",
		restarts, percentile(toConnected, 50).Round(time.Millisecond), percentile(toConnected, 99).Round(time.Millisecond),
		percentile(toGroup, 50).Round(time.Millisecond), percentile(toGroup, 99).Round(time.Millisecond))
	figure(t, "relay restart", "video: %d groups, %d gap records covering %d groups; %d lost in %d outages (bound: in flight + one per GOP until the next group, %d); 0 duplicates, no unaccounted sequence",
		v.groups, len(v.gaps), v.gapGroups, lost, len(outages), bound)
}

// TestReliabilityPacketLoss puts a UDP proxy that the test owns between
// wt-archive and the real moq-relay (QUIC is UDP, and the certificate is pinned
// by fingerprint, so the proxy's address is fine), then drops and delays
// packets: random loss with delay, a blackout shorter than the 2 s in which
// the client declares a silent relay dead and one longer but within the
// relay's cache (in soak mode also one beyond it). It measures the
// groups archived and lost in each phase and the time to the first new group
// after each blackout, and checks that the loss causes no reconnect, that the
// groups missed in the blackouts are taken from the relay's cache (no gap
// record), and that nothing is duplicated.
func TestReliabilityPacketLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), bySoak(2*time.Minute, 10*time.Minute))
	defer cancel()
	dir := t.TempDir()
	relay, _ := startLive(t, ctx, dir, "lossy.hang")
	proxy := startUDPProxy(t, fmt.Sprintf("127.0.0.1:%d", relay.Port))
	root := filepath.Join(dir, "archive")
	url := fmt.Sprintf("https://%s/anon", proxy.addr())
	arch := newArchiver(t, dir, "wt-archive", url, "lossy.hang", root+"/cas", root+"/manifests",
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "10s")
	arch.start()
	video := func() []manifest.Entry {
		return readManifests(t, root+"/manifests")[trackKey{"lossy.hang", videoTrack}]
	}
	waitFor(t, "the first video groups", time.Minute, func() (bool, string) { return groupCount(video()) >= 2, "" })

	type phase struct {
		name  string
		drop  float64
		delay time.Duration
		span  time.Duration
		// reconnect: the session may end (the path was dead for longer than the
		// idle timeout); otherwise a reconnect is a false alarm.
		reconnect bool
		// lossless: every group missed is still in the relay's cache (30 s), so
		// none may become a gap record.
		lossless bool
		// expired: every gap must say that the relay no longer had the groups.
		expired bool
	}
	phases := []phase{
		{"5% loss, 20ms delay", 0.05, 20 * time.Millisecond, 8 * time.Second, false, true, false},
		{"blackout 1s (< 2 s liveness window)", 1, 0, time.Second, false, true, false},
		{"blackout 10s (> liveness window, < relay cache)", 1, 0, 10 * time.Second, true, true, false},
	}
	if soakMode() {
		phases = append(phases,
			// The relay skips groups a lossy subscriber falls behind on.
			phase{"20% loss, 50ms delay", 0.20, 50 * time.Millisecond, 60 * time.Second, true, false, false},
			phase{"blackout 40s (> stall timeout and relay cache)", 1, 0, 40 * time.Second, true, false, true})
	}
	for _, p := range phases {
		before := video()
		connects := len(logTimes(arch.logText(), "msg=connected"))
		proxy.set(p.drop, p.delay)
		time.Sleep(p.span)
		proxy.set(0, 0)
		restored := time.Now()
		var first time.Time
		waitFor(t, "a new video group after "+p.name, time.Minute, func() (bool, string) {
			first = firstGroupAfterTime(video(), restored)
			return !first.IsZero(), ""
		})
		// The back-fill of what was missed runs beside the live subscription.
		waitFor(t, "every video group so far accounted for after "+p.name, time.Minute, func() (bool, string) {
			v := video()
			return accountedUpTo(v, highestGroup(v)), ""
		})
		during := video()[len(before):]
		grp, gapGroups := 0, 0
		var gaps []string
		for _, e := range during {
			if e.Kind == record.KindGap {
				gapGroups += int(e.Last - e.First + 1)
				gaps = append(gaps, fmt.Sprintf("%d-%d %s", e.First, e.Last, e.Reason))
			} else if time.UnixMilli(e.ReceivedUnixMs).Before(restored) {
				grp++
			}
		}
		reconnects := len(logTimes(arch.logText(), "msg=connected")) - connects
		figure(t, "packet loss", "%s for %v: %d video groups archived meanwhile, %d recorded as gaps %q; %d reconnects; first new group %v after the network was restored; %d packets dropped so far",
			p.name, p.span, grp, gapGroups, gaps, reconnects, first.Sub(restored).Round(time.Millisecond), proxy.dropped.Load())
		if !p.reconnect && reconnects > 0 {
			t.Errorf("%s: %d spurious reconnects", p.name, reconnects)
		}
		if p.lossless && len(gaps) > 0 {
			t.Errorf("%s: gap records %q for groups the relay still cached", p.name, gaps)
		}
		if p.expired {
			for _, e := range during {
				if e.Kind == record.KindGap && e.Reason != record.GapExpired {
					t.Errorf("%s: gap %d-%d %s, want %s (older than the relay's cache)", p.name, e.First, e.Last, e.Reason, record.GapExpired)
				}
			}
		}
	}
	if err := arch.stop(); err != nil {
		t.Fatalf("wt-archive: %v\n%s", err, lastLines(arch.logText(), 20))
	}
	if n := checkStores(t, root+"/cas", root+"/manifests"); n != 0 {
		t.Fatalf("%d torn lines after a clean stop", n)
	}
	for k, entries := range readManifests(t, root+"/manifests") {
		account(t, k.track, entries)
	}
	figure(t, "packet loss", "reconnects logged: %d; every track accounted for, no duplicate", len(logTimes(arch.logText(), "msg=connected"))-1)
}

// accountedUpTo reports whether every sequence from the first one up to seq
// is archived or covered by a gap record.
func accountedUpTo(entries []manifest.Entry, seq uint64) bool {
	seen := map[uint64]bool{}
	first := uint64(math.MaxUint64)
	for _, e := range entries {
		lo, hi := e.Group, e.Group
		if e.Kind == record.KindGap {
			lo, hi = e.First, e.Last
		}
		first = min(first, lo)
		for s := lo; s <= hi && s <= seq; s++ {
			seen[s] = true
		}
	}
	for s := first; s <= seq; s++ {
		if !seen[s] {
			return false
		}
	}
	return true
}

func groupCount(entries []manifest.Entry) int {
	n := 0
	for _, e := range entries {
		if e.Kind == record.KindGroup {
			n++
		}
	}
	return n
}

func highestGroup(entries []manifest.Entry) uint64 {
	var high uint64
	for _, e := range entries {
		if e.Kind == record.KindGroup {
			high = max(high, e.Group)
		}
	}
	return high
}

// firstGroupAfter returns the receive time of the first group above seq.
func firstGroupAfter(entries []manifest.Entry, seq uint64) time.Time {
	for _, e := range entries {
		if e.Kind == record.KindGroup && e.Group > seq {
			return time.UnixMilli(e.ReceivedUnixMs)
		}
	}
	return time.Time{}
}

// firstGroupAfterTime returns the receive time of the first group received after t.
func firstGroupAfterTime(entries []manifest.Entry, t time.Time) time.Time {
	for _, e := range entries {
		if r := time.UnixMilli(e.ReceivedUnixMs); e.Kind == record.KindGroup && r.After(t) {
			return r
		}
	}
	return time.Time{}
}

// logTimes returns the time= of every slog text line containing what.
func logTimes(log, what string) []time.Time {
	var out []time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, what) || !strings.HasPrefix(line, "time=") {
			continue
		}
		field, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if ts, err := time.Parse(time.RFC3339Nano, field); err == nil {
			out = append(out, ts)
		}
	}
	return out
}

// udpProxy forwards UDP datagrams between clients and one upstream address on
// loopback, dropping a fraction of them and delaying the rest, both ways.
type udpProxy struct {
	t        *testing.T
	conn     *net.UDPConn
	upstream *net.UDPAddr
	drop     atomic.Uint64 // fraction * 1e6
	delay    atomic.Int64  // ns
	dropped  atomic.Int64

	mu      sync.Mutex
	clients map[string]*net.UDPConn // client address -> its upstream socket
	rng     *rand.Rand
}

func startUDPProxy(t *testing.T, upstream string) *udpProxy {
	t.Helper()
	up, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{t: t, conn: conn, upstream: up, clients: map[string]*net.UDPConn{},
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))}
	t.Cleanup(func() {
		conn.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.clients {
			c.Close()
		}
	})
	go p.serve()
	return p
}

func (p *udpProxy) addr() string { return p.conn.LocalAddr().String() }

// set changes the drop fraction (0..1) and the one-way delay.
func (p *udpProxy) set(drop float64, delay time.Duration) {
	p.drop.Store(uint64(drop * 1e6))
	p.delay.Store(int64(delay))
}

// pass decides whether to forward a datagram and calls send, after the delay.
func (p *udpProxy) pass(data []byte, send func([]byte)) {
	p.mu.Lock()
	lose := float64(p.drop.Load())/1e6 > p.rng.Float64()
	p.mu.Unlock()
	if lose {
		p.dropped.Add(1)
		return
	}
	d := time.Duration(p.delay.Load())
	if d == 0 {
		send(data)
		return
	}
	data = append([]byte(nil), data...)
	time.AfterFunc(d, func() { send(data) })
}

func (p *udpProxy) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up := p.client(from)
		if up == nil {
			continue
		}
		p.pass(buf[:n], func(b []byte) { _, _ = up.Write(b) })
	}
}

// client returns the upstream socket of a client, starting its return path.
func (p *udpProxy) client(from *net.UDPAddr) *net.UDPConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[from.String()]; ok {
		return c
	}
	up, err := net.DialUDP("udp", nil, p.upstream)
	if err != nil {
		p.t.Logf("proxy: %v", err)
		return nil
	}
	p.clients[from.String()] = up
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue // ICMP port unreachable while the upstream is down
			}
			p.pass(buf[:n], func(b []byte) { _, _ = p.conn.WriteToUDP(b, from) })
		}
	}()
	return up
}

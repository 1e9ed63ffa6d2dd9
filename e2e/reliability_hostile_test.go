//go:build e2e

package e2e

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/archive"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire"
	"github.com/every-channel/ec-node/pkg/record"
)

// hostileHeapBound is the most heap the test process (the archiver's two
// workers and the stand-in relay together) may use during the attack. The
// attack could claim terabytes; what bounds memory is the archiver's limits
// (8 groups in flight per track, 64 MiB per group streamed to disk, 32 MiB
// frames refused beyond) and QUIC flow control.
const hostileHeapBound = 256 << 20

// TestReliabilityHostileRelay runs two archive workers in this process, as
// archive-auto's in-process mode does, against the Go stand-in relay
// (pkg/moq/moqtest): one follows a broadcast whose tracks attack the archiver
// (frames claiming a terabyte, group headers with huge varints, as many tiny
// groups as the connection lets through, groups that never end), the other a
// well-behaved broadcast with a group every 100ms. It samples the heap
// throughout: it must stay bounded, the good broadcast must keep being
// archived on time, and the archive of both must stay consistent.
//
// It runs once in moq-lite-06 framing (what the archiver offers first) and once
// in moq-lite-04 framing (no SETUP, TRACK or frame timestamps).
func TestReliabilityHostileRelay(t *testing.T) {
	for _, v := range []wire.Version{wire.Lite06, wire.Lite04} {
		t.Run(v.String(), func(t *testing.T) { hostileRelay(t, v) })
	}
}

func hostileRelay(t *testing.T, v wire.Version) {
	attack := bySoak(8*time.Second, 2*time.Minute)
	dir := t.TempDir()
	var sent hostileCounts
	standIn, err := moqtest.Start([]string{v.String()}, func(p *moqtest.Peer) { serveHostile(p, &sent) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standIn.Close() })
	store, err := cas.OpenLocal(filepath.Join(dir, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(dir, "manifests")
	logFile := logFile(t, dir, "workers.log")
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range []struct {
		broadcast string
		tracks    []string
	}{
		{"evil", []string{"huge.m4s", "tiny.m4s", "endless.m4s", "garbage.m4s"}},
		{"good", []string{"good.m4s"}},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := archive.Run(ctx, archive.Config{
				RelayURL: standIn.URL + "anon", Broadcast: w.broadcast, Tracks: w.tracks,
				Store: store, ManifestDir: mdir, Logger: log.With("worker", w.broadcast),
				Dial:       moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: standIn.Fingerprint}},
				MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
			})
			if err != nil {
				t.Errorf("worker %s: %v", w.broadcast, err)
			}
		}()
	}

	var peakHeap, peakSys uint64
	peakGoroutines := 0
	deadline := time.Now().Add(attack)
	for time.Now().Before(deadline) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peakHeap, peakSys = max(peakHeap, m.HeapInuse), max(peakSys, m.Sys)
		peakGoroutines = max(peakGoroutines, runtime.NumGoroutine())
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	manifests := readManifests(t, mdir)
	good := manifests[trackKey{"good", "good.m4s"}]
	var received []time.Time
	for _, e := range good {
		if e.Kind == record.KindGroup {
			received = append(received, time.UnixMilli(e.ReceivedUnixMs))
		}
	}
	var longest time.Duration
	for i := 1; i < len(received); i++ {
		longest = max(longest, received[i].Sub(received[i-1]))
	}
	wantGood := int(attack / (100 * time.Millisecond))
	if len(received) < wantGood/2 || longest > 2*time.Second {
		t.Errorf("good broadcast stalled: %d of ~%d groups archived, longest pause %v", len(received), wantGood, longest)
	}
	evil := map[string]int{}
	for k, entries := range manifests {
		if k.broadcast != "evil" {
			continue
		}
		for _, e := range entries {
			if e.Kind == record.KindGap {
				evil[k.track+" gap "+e.Reason] += int(e.Last - e.First + 1)
			} else {
				evil[k.track+" group"]++
			}
		}
	}
	if evil["huge.m4s group"]+evil["endless.m4s group"]+evil["garbage.m4s group"] > 0 {
		t.Errorf("hostile groups archived as if complete: %v", evil)
	}
	vr, err := store.Verify(context.Background(), cas.VerifyOptions{})
	if err != nil || !vr.Clean() {
		t.Errorf("cas verify: %+v %v", vr, err)
	}
	if mc, err := manifest.Check(context.Background(), mdir, store, manifest.CheckOptions{}); err != nil || !mc.Clean() {
		t.Errorf("manifest check: %+v %v", mc, err)
	}
	figure(t, "hostile relay", "%v attack: stand-in sent %d tiny groups, %d terabyte-claiming frames, %d huge-varint headers, %d endless groups; archiver: %v",
		attack, sent.tiny.Load(), sent.huge.Load(), sent.garbage.Load(), sent.endless.Load(), evil)
	figure(t, "hostile relay", "peak heap in use %.1f MiB (baseline %.1f MiB, bound %d MiB), peak Sys %.1f MiB, peak goroutines %d; good broadcast: %d of ~%d groups, longest pause %v",
		mib(peakHeap), mib(base.HeapInuse), hostileHeapBound>>20, mib(peakSys), peakGoroutines, len(received), wantGood, longest.Round(time.Millisecond))
	if peakHeap > hostileHeapBound {
		t.Errorf("peak heap %.1f MiB exceeds the bound of %d MiB", mib(peakHeap), hostileHeapBound>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// hostileCounts counts what the stand-in sent.
type hostileCounts struct{ tiny, huge, garbage, endless atomic.Int64 }

// serveHostile answers like a relay with the broadcasts "evil" and "good", and
// attacks through the tracks of "evil", in the framing of the negotiated version.
func serveHostile(p *moqtest.Peer, sent *hostileCounts) {
	ctx := p.Session.Context()
	v := p.Version
	for {
		c, err := p.AcceptControl(ctx)
		if err != nil {
			return
		}
		switch c.Type {
		case wire.StreamAnnounce:
			if _, err := wire.ReadAnnouncePlease(c.R, v); err != nil {
				return
			}
			var b []byte
			if v.HasAnnounceOK() {
				b, _ = wire.AnnounceOK{Active: 1}.Append(b, v)
			}
			b, _ = wire.Announce{Status: wire.AnnounceActive}.Append(b, v) // the prefix is the broadcast
			_, _ = c.Stream.Write(b)
			go io.Copy(io.Discard, c.R)
		case wire.StreamTrack:
			_, _ = wire.ReadTrack(c.R, v)
			b, _ := wire.TrackInfo{Timescale: 1000}.Append(nil, v)
			_, _ = c.Stream.Write(b)
			_ = c.Stream.Close()
		case wire.StreamSubscribe:
			req, err := wire.ReadSubscribe(c.R, v)
			if err != nil {
				return
			}
			resp := wire.SubscribeResponse{Kind: wire.ResponseOK}
			if v.HasTrackStream() {
				resp.Kind = wire.ResponseStart // lite-05 and later have no SUBSCRIBE_OK
			}
			b, _ := resp.Append(nil, v)
			if _, err := c.Stream.Write(b); err != nil {
				return
			}
			sctx, stop := context.WithCancel(ctx)
			go func() { _, _ = io.Copy(io.Discard, c.R); stop() }() // until the client unsubscribes
			go attackTrack(sctx, p, v, req, sent)
		}
	}
}

// attackTrack sends one track's groups until ctx ends.
func attackTrack(ctx context.Context, p *moqtest.Peer, v wire.Version, req wire.Subscribe, sent *hostileCounts) {
	uni := func(b []byte) *sendStream {
		str, err := p.OpenUni(ctx, b)
		if err != nil {
			return nil
		}
		return &sendStream{str}
	}
	var terabyte []byte // a frame header claiming 2^40 bytes
	if v.HasTrackStream() {
		terabyte = []byte{0x00} // timestamp delta 0
	}
	terabyte, _ = wire.AppendVarint(terabyte, 1<<40)
	hugeVarint, _ := wire.AppendVarint(nil, wire.MaxVarint)
	for seq := uint64(0); ctx.Err() == nil; seq++ {
		switch req.Track {
		case "good.m4s":
			if s := uni(moqtest.GroupStream(v, req.ID, seq, make([]byte, 1024))); s != nil {
				s.Close()
			}
			sleep(ctx, 100*time.Millisecond)
		case "tiny.m4s": // as many groups as flow control lets through
			if s := uni(moqtest.GroupStream(v, req.ID, seq, []byte{byte(seq)})); s != nil {
				s.Close()
				sent.tiny.Add(1)
			}
		case "huge.m4s": // a frame claiming a terabyte, then bytes as fast as allowed
			if s := uni(append(moqtest.GroupStream(v, req.ID, seq), terabyte...)); s != nil {
				sent.huge.Add(1)
				go s.flood(ctx, time.Second)
			}
			sleep(ctx, 200*time.Millisecond)
		case "garbage.m4s": // a group header whose length is the largest varint
			if s := uni(append(wire.AppendStreamType(nil, wire.StreamGroup), hugeVarint...)); s != nil {
				sent.garbage.Add(1)
				go s.flood(ctx, time.Second)
			}
			sleep(ctx, 100*time.Millisecond)
		case "endless.m4s": // a 16 MiB frame trickled, never finished
			hdr, _ := wire.FrameHeader{Size: 16 << 20}.Append(moqtest.GroupStream(v, req.ID, seq), v, 0)
			if s := uni(hdr); s != nil {
				sent.endless.Add(1)
				go s.trickle(ctx)
			}
			sleep(ctx, time.Second)
		default:
			return
		}
	}
}

type sendStream struct {
	io.WriteCloser
}

// flood writes junk for d or until the peer resets the stream.
func (s *sendStream) flood(ctx context.Context, d time.Duration) {
	buf := make([]byte, 32<<10)
	end := time.Now().Add(d)
	for ctx.Err() == nil && time.Now().Before(end) {
		if _, err := s.Write(buf); err != nil {
			return
		}
	}
	s.Close()
}

// trickle writes a byte every 100ms until ctx ends or the peer resets.
func (s *sendStream) trickle(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := s.Write([]byte{0}); err != nil {
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

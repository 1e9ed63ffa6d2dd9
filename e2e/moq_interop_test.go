//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/moq"
)

// TestMoQInterop is the proof that pkg/moq speaks the real moq-relay: for each
// moq-lite version, a relay restricted to that version, a real moq-cli
// publisher (ffmpeg test pattern), and our client listing, subscribing to the
// catalog and to every track it names, receiving complete groups, and seeing
// the broadcast end when the publisher stops.
func TestMoQInterop(t *testing.T) {
	for _, version := range []string{"moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03"} {
		t.Run(version, func(t *testing.T) { interopOneVersion(t, version) })
	}
}

func interopOneVersion(t *testing.T, version string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	relay, pub := startLive(t, ctx, dir, "bbb.hang", version)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sess, err := moq.Dial(ctx, relay.URL("anon"), moq.DialOptions{
		TLS: moq.TLSOptions{Fingerprint: relay.Fingerprint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != version {
		t.Fatalf("negotiated %s, relay only accepts %s", sess.Version(), version)
	}

	anns, err := sess.Announced(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for {
		a, err := anns.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the announcement: %v\n%s", err, pub.Logs())
		}
		t.Logf("announcement %+v", a)
		if a.Broadcast == "bbb.hang" && a.Active {
			break
		}
	}
	defer anns.Close() // kept open: the publisher's end is checked last

	catalogSub, err := sess.Subscribe(ctx, "bbb.hang", "catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	g, err := catalogSub.NextGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := g.NextFrame()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	var catalog struct {
		Video struct{ Renditions map[string]json.RawMessage } `json:"video"`
		Audio struct{ Renditions map[string]json.RawMessage } `json:"audio"`
	}
	if err := json.Unmarshal(raw, &catalog); err != nil {
		t.Fatalf("catalog is not JSON: %v\n%s", err, raw)
	}
	var tracks []string
	for name := range catalog.Video.Renditions {
		tracks = append(tracks, name)
	}
	for name := range catalog.Audio.Renditions {
		tracks = append(tracks, name)
	}
	sort.Strings(tracks)
	if len(catalog.Video.Renditions) == 0 || len(catalog.Audio.Renditions) == 0 {
		t.Fatalf("catalog names no video or no audio track: %s", raw)
	}
	t.Logf("catalog group %d (%d bytes) names tracks %v", g.Sequence(), len(raw), tracks)
	catalogSub.Close()

	const wantGroups = 3
	for _, track := range tracks {
		sub, err := sess.Subscribe(ctx, "bbb.hang", track)
		if err != nil {
			t.Fatalf("subscribe %s: %v", track, err)
		}
		var complete, frames, bytes int
		for complete < wantGroups {
			g, err := sub.NextGroup(ctx)
			if err != nil {
				t.Fatalf("track %s after %d groups: %v", track, complete, err)
			}
			n, size, err := interopReadGroup(g, version >= "moq-lite-05")
			if errors.Is(err, moq.ErrGroupReset) {
				t.Logf("track %s group %d reset by relay: %v", track, g.Sequence(), err)
				continue
			}
			if err != nil {
				t.Fatalf("track %s group %d: %v", track, g.Sequence(), err)
			}
			if n == 0 {
				t.Fatalf("track %s group %d is empty", track, g.Sequence())
			}
			complete++
			frames += n
			bytes += size
		}
		t.Logf("%s: track %s: %d complete groups, %d frames, %d bytes", version, track, complete, frames, bytes)
		sub.Close()
	}

	// The publisher leaving must reach us as the broadcast's end (on lite-06 an
	// ANNOUNCE_END naming the id its ANNOUNCE_START took).
	if err := pub.Stop(); err != nil {
		t.Logf("stopping the publisher: %v", err)
	}
	for {
		a, err := anns.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the end of bbb.hang: %v", err)
		}
		t.Logf("announcement %+v", a)
		if a.Broadcast == "bbb.hang" && !a.Active {
			break
		}
	}
}

// interopReadGroup reads a whole group, checking lite-05+ timestamps are present
// and never go backwards within the group.
func interopReadGroup(g moq.Group, timed bool) (frames, size int, err error) {
	var prev int64 = -1
	for {
		f, err := g.NextFrame()
		if err == io.EOF {
			return frames, size, nil
		}
		if err != nil {
			return frames, size, err
		}
		if f.HasTimestamp != timed || (timed && (f.Timescale == 0 || f.Timestamp < prev)) {
			return frames, size, errors.New("frame timestamp fields wrong for this version")
		}
		prev = f.Timestamp
		n, err := io.Copy(io.Discard, f.Body)
		if err != nil {
			return frames, size, err
		}
		if n != f.Size {
			return frames, size, errors.New("frame body length differs from its header")
		}
		frames++
		size += int(n)
	}
}

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

// TestIETFInterop: a relay accepting moq-lite-06 and IETF draft-14, a real
// moq-cli publisher, and our client forced to draft-14: SUBSCRIBE_ERROR for an
// absent broadcast, announcements through SUBSCRIBE_NAMESPACE, the catalog and
// complete groups of every track it names, and the broadcast's end.
func TestIETFInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	relay, pub := startLive(t, ctx, dir, "bbb.hang", "moq-lite-06", "moq-transport-14")

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sess, err := moq.Dial(ctx, relay.URL("anon"), moq.DialOptions{Protocol: moq.ProtocolIETF,
		TLS: moq.TLSOptions{Fingerprint: relay.Fingerprint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != "moq-transport-14" {
		t.Fatalf("negotiated %s, want moq-transport-14", sess.Version())
	}
	if _, err := sess.Subscribe(ctx, "no-such.hang", "catalog.json"); !errors.Is(err, moq.ErrNotFound) {
		t.Fatalf("subscribe to an absent broadcast: %v, want ErrNotFound", err)
	}
	anns, err := sess.Announced(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer anns.Close() // kept open: the publisher's end is checked last
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
	if len(tracks) == 0 {
		t.Fatalf("catalog names no track: %s", raw)
	}
	catalogSub.Close()

	for _, track := range tracks {
		sub, err := sess.Subscribe(ctx, "bbb.hang", track)
		if err != nil {
			t.Fatalf("subscribe %s: %v", track, err)
		}
		var complete, frames, bytes int
		for complete < 3 {
			g, err := sub.NextGroup(ctx)
			if err != nil {
				t.Fatalf("track %s after %d groups: %v", track, complete, err)
			}
			n, size, err := interopReadGroup(g, false)
			if errors.Is(err, moq.ErrGroupReset) {
				t.Logf("track %s group %d reset: %v", track, g.Sequence(), err)
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
		t.Logf("track %s: %d complete groups, %d frames, %d bytes", track, complete, frames, bytes)
		sub.Close()
	}

	// The publisher leaving must reach us as PUBLISH_NAMESPACE_DONE.
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

// TestIETFAutoRealRelay: against a relay restricted to draft-14, the default
// protocol choice (auto: moq-lite first, then moq-00) ends up on draft-14.
func TestIETFAutoRealRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	relay, pub := startLive(t, ctx, t.TempDir(), "bbb.hang", "moq-transport-14")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sess, err := moq.Dial(ctx, relay.URL("anon"), moq.DialOptions{
		TLS: moq.TLSOptions{Fingerprint: relay.Fingerprint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != "moq-transport-14" {
		t.Fatalf("auto negotiated %s with a draft-14-only relay", sess.Version())
	}
	anns, err := sess.Announced(ctx, "bbb.hang")
	if err != nil {
		t.Fatal(err)
	}
	defer anns.Close()
	for {
		a, err := anns.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the announcement: %v\n%s", err, pub.Logs())
		}
		if a.Broadcast == "bbb.hang" && a.Active {
			break
		}
	}
	sub, err := sess.Subscribe(ctx, "bbb.hang", "catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	g, err := sub.NextGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := interopReadGroup(g, false); err != nil || n != 1 {
		t.Fatalf("catalog group: %d frames, %v", n, err)
	}
}

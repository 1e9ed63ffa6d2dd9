//go:build e2e

package e2e

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/moq"
)

// TestRawQUICDial: moq-relay serves moq-lite-06 and draft-14 over raw QUIC on
// its QUIC port, the version being the ALPN; a moq-cli publisher on raw QUIC
// too. Our client reads the catalog over each.
func TestRawQUICDial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{Versions: []string{"moq-lite-06", "moq-transport-14"}, LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Kill() })
	pub, err := peers.StartPublisher(ctx, relay, "bbb.hang", t.Logf, peers.PublisherOptions{LogDir: dir, RawQUIC: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Kill() })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, tc := range []struct {
		protocol, want string
		timed          bool // moq-lite-05 on sends frame timestamps
	}{
		{moq.ProtocolLite, "moq-lite-06", true},
		{moq.ProtocolIETF, "moq-transport-14", false},
		{moq.ProtocolAuto, "moq-lite-06", true},
	} {
		sess, err := moq.Dial(ctx, relay.QUICURL("anon"), moq.DialOptions{Protocol: tc.protocol,
			TLS: moq.TLSOptions{Fingerprint: relay.Fingerprint()}, Logger: log})
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		if sess.Version() != tc.want {
			t.Errorf("%s: negotiated %s, want %s", tc.protocol, sess.Version(), tc.want)
		}
		anns, err := sess.Announced(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for {
			a, err := anns.Next(ctx)
			if err != nil {
				t.Fatalf("%s: waiting for the announcement: %v\n%s", tc.protocol, err, pub.Logs())
			}
			if a.Broadcast == "bbb.hang" && a.Active {
				break
			}
		}
		anns.Close()
		sub, err := sess.Subscribe(ctx, "bbb.hang", "catalog.json")
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		g, err := sub.NextGroup(ctx)
		if err != nil {
			t.Fatalf("%s: %v", tc.protocol, err)
		}
		if n, _, err := interopReadGroup(g, tc.timed); err != nil || n != 1 {
			t.Fatalf("%s: catalog group: %d frames, %v", tc.protocol, n, err)
		}
		sub.Close()
		sess.Close()
	}
}

package moq_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/moq"
	"github.com/every-channel/ec-node/pkg/moq/h3wt"
	"github.com/every-channel/ec-node/pkg/moq/moqtest"
	"github.com/every-channel/ec-node/pkg/moq/wire"
)

var allVersions = []string{"moq-lite-06", "moq-lite-05", "moq-lite-04", "moq-lite-03"}

func startStandIn(t *testing.T, versions []string, h moqtest.Handler) *moqtest.StandIn {
	t.Helper()
	s, err := moqtest.Start(versions, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *moqtest.StandIn, versions []string) moq.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := moq.Dial(ctx, s.URL+"anon?jwt=secret", moq.DialOptions{
		TLS: moq.TLSOptions{Fingerprint: s.Fingerprint}, Versions: versions, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readGroup reads every frame of g; it returns the payloads and the error that
// ended the group (io.EOF when complete).
func readGroup(g moq.Group) ([][]byte, moq.Frame, error) {
	var frames [][]byte
	var last moq.Frame
	for {
		f, err := g.NextFrame()
		if err != nil {
			return frames, last, err
		}
		b, err := io.ReadAll(f.Body)
		if err != nil {
			return frames, last, err
		}
		frames = append(frames, b)
		last = f
	}
}

func TestSessionAgainstStandIn(t *testing.T) {
	pub := moqtest.Publisher{Broadcast: "bbb.hang", Tracks: map[string]moqtest.Track{
		"catalog.json": {Groups: [][][]byte{{[]byte(`{"video":{}}`)}}, Timescale: 90000},
		"video0.m4s":   {Groups: [][][]byte{{[]byte("key"), []byte("delta")}, {[]byte("key2")}}, End: true},
	}}
	for _, v := range allVersions {
		t.Run(v, func(t *testing.T) {
			s := startStandIn(t, allVersions, pub.Serve)
			sess := dial(t, s, []string{v})
			ctx := testCtx(t)
			if sess.Version() != v {
				t.Fatalf("version %q, want %q", sess.Version(), v)
			}
			anns, err := sess.Announced(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			a, err := anns.Next(ctx)
			if err != nil || a != (moq.Announcement{Broadcast: "bbb.hang", Active: true}) {
				t.Fatalf("announcement %+v, %v", a, err)
			}
			anns.Close()

			sub, err := sess.Subscribe(ctx, "bbb.hang", "catalog.json")
			if err != nil {
				t.Fatal(err)
			}
			g, err := sub.NextGroup(ctx)
			if err != nil {
				t.Fatal(err)
			}
			frames, last, err := readGroup(g)
			if err != io.EOF || len(frames) != 1 || string(frames[0]) != `{"video":{}}` {
				t.Fatalf("catalog group: %q, %v", frames, err)
			}
			if want := v >= "moq-lite-05"; last.HasTimestamp != want || (want && last.Timescale != 90000) {
				t.Fatalf("timestamp fields %+v on %s", last, v)
			}
			sub.Close()

			video, err := sess.Subscribe(ctx, "bbb.hang", "video0.m4s")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[uint64]int{}
			for {
				g, err := video.NextGroup(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				frames, _, err := readGroup(g)
				if err != io.EOF {
					t.Fatalf("group %d: %v", g.Sequence(), err)
				}
				seen[g.Sequence()] = len(frames)
			}
			if seen[0] != 2 || seen[1] != 1 {
				t.Fatalf("groups seen %v", seen)
			}

			_, err = sess.Subscribe(ctx, "bbb.hang", "nope")
			if !errors.Is(err, moq.ErrNotFound) {
				t.Fatalf("unknown track: %v, want ErrNotFound", err)
			}
			_, err = sess.Subscribe(ctx, "other", "catalog.json")
			if !errors.Is(err, moq.ErrNotFound) {
				t.Fatalf("unknown broadcast: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestVersionNegotiation(t *testing.T) {
	s := startStandIn(t, []string{"moq-lite-03"}, func(p *moqtest.Peer) { <-p.Session.Context().Done() })
	sess := dial(t, s, []string{"moq-lite-04", "moq-lite-03"})
	if sess.Version() != "moq-lite-03" {
		t.Fatalf("got %s", sess.Version())
	}
	_, err := moq.Dial(testCtx(t), s.URL, moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: s.Fingerprint},
		Versions: []string{"moq-lite-05"}, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "picked none") {
		t.Fatalf("no common version: %v", err)
	}
	if _, err := moq.Dial(testCtx(t), s.URL, moq.DialOptions{Versions: []string{"moq-lite-99"}}); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func TestTLSOptions(t *testing.T) {
	s := startStandIn(t, allVersions, func(p *moqtest.Peer) { <-p.Session.Context().Done() })
	ctx := testCtx(t)
	var logs bytes.Buffer
	cases := []struct {
		name string
		tls  moq.TLSOptions
		ok   bool
	}{
		{"system roots refuse a self-signed cert", moq.TLSOptions{}, false},
		{"wrong fingerprint", moq.TLSOptions{Fingerprint: strings.Repeat("ab", 32)}, false},
		{"pinned fingerprint with colons", moq.TLSOptions{Fingerprint: strings.ToUpper(colons(s.Fingerprint))}, true},
		{"verification disabled", moq.TLSOptions{DisableVerify: true}, true},
	}
	for _, tc := range cases {
		sess, err := moq.Dial(ctx, s.URL+"?jwt=topsecret", moq.DialOptions{TLS: tc.tls,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err %v", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Fatalf("%s: error leaks the token: %v", tc.name, err)
		}
		if sess != nil {
			sess.Close()
		}
	}
	if !strings.Contains(logs.String(), "VERIFICATION IS DISABLED") || strings.Contains(logs.String(), "topsecret") {
		t.Fatalf("logs: %s", logs.String())
	}
	if _, err := moq.Dial(ctx, s.URL, moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: "xyz"}}); err == nil {
		t.Fatal("malformed fingerprint accepted")
	}
}

func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://relay:4443/anon?jwt=abc.def": "https://relay:4443/anon?jwt=REDACTED",
		"https://u:p@relay/anon?a=1&jwt=x#f":  "https://relay/anon?a=REDACTED&jwt=REDACTED",
		"https://relay/anon":                  "https://relay/anon",
		"://bad":                              "<unparseable URL>",
	} {
		if got := moq.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGoroutinesReleased: every goroutine a session starts, and the QUIC ones
// under it, are gone once the sessions are closed.
func TestGoroutinesReleased(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		pub := moqtest.Publisher{Broadcast: "b", Tracks: map[string]moqtest.Track{"t": {Groups: [][][]byte{{[]byte("x")}}}}}
		s, err := moqtest.Start(allVersions, pub.Serve)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, v := range allVersions {
			sess, err := moq.Dial(testCtx(t), s.URL, moq.DialOptions{TLS: moq.TLSOptions{Fingerprint: s.Fingerprint},
				Versions: []string{v}, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := sess.Subscribe(testCtx(t), "b", "t")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sub.NextGroup(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			a, _ := sess.Announced(testCtx(t), "")
			_, _ = a.Next(testCtx(t))
			sess.Close()
			select {
			case <-sess.Done():
			default:
				t.Fatal("Done not closed after Close")
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

var _ = wire.Lite03

// A relay that closes the WebTransport session says why with a
// CLOSE_WEBTRANSPORT_SESSION capsule; the session's error carries its code.
func TestSessionClosedByRelayReportsCode(t *testing.T) {
	s := startStandIn(t, []string{"moq-lite-03"}, func(p *moqtest.Peer) {
		_ = p.Session.CloseWithError(0x7, "going away")
	})
	sess := dial(t, s, []string{"moq-lite-03"})
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session not ended by the relay's close")
	}
	var closed *h3wt.SessionError
	if !errors.As(sess.Err(), &closed) || closed.Code != 0x7 || closed.Message != "going away" {
		t.Fatalf("session error %v, want the relay's code 0x7 and message", sess.Err())
	}
}

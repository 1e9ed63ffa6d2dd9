package discover

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/every-channel/ec-node/pkg/backoff"
	"github.com/every-channel/ec-node/pkg/moq"
)

// stubSession is a stand-in for a moq.Session that only serves announcements,
// fed by the test through a channel; closing the channel ends the session.
type stubSession struct {
	moq.Session // Subscribe etc. are not used by AnnounceSource
	anns        chan moq.Announcement
	prefix      chan string
}

func (s *stubSession) Version() string { return "stub" }
func (s *stubSession) Close() error    { return nil }
func (s *stubSession) Announced(ctx context.Context, prefix string) (moq.Announcements, error) {
	s.prefix <- prefix
	return s, nil
}
func (s *stubSession) Next(ctx context.Context) (moq.Announcement, error) {
	select {
	case a, ok := <-s.anns:
		if !ok {
			return moq.Announcement{}, errors.New("stub: session closed")
		}
		return a, nil
	case <-ctx.Done():
		return moq.Announcement{}, ctx.Err()
	}
}

func waitList(t *testing.T, src *AnnounceSource, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		list, err := src.List(context.Background())
		got = fmt.Sprint(list, err)
		if got == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("List = %s, want %s", got, want)
}

func TestAnnounceSourceTracksSetAndReconnects(t *testing.T) {
	sessions := make(chan *stubSession, 2)
	src := &AnnounceSource{
		RelayURL: "https://relay.test/anon",
		Prefix:   "live/",
		Settle:   20 * time.Millisecond,
		Backoff:  backoff.Policy{Min: time.Millisecond, Max: 2 * time.Millisecond},
		Dial: func(ctx context.Context, url string) (moq.Session, error) {
			s := &stubSession{anns: make(chan moq.Announcement), prefix: make(chan string, 1)}
			sessions <- s
			return s, nil
		},
	}
	if _, err := src.List(context.Background()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("List before Run = %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()

	s := <-sessions
	if p := <-s.prefix; p != "live/" {
		t.Errorf("prefix %q, want live/", p)
	}
	s.anns <- moq.Announcement{Broadcast: "live/a", Active: true}
	s.anns <- moq.Announcement{Broadcast: "live/b", Active: true}
	s.anns <- moq.Announcement{Broadcast: "live/../x", Active: true} // invalid: ignored
	s.anns <- moq.Announcement{Broadcast: "live/a", Active: false}
	waitList(t, src, "[{https://relay.test/anon live/b}] <nil>")

	close(s.anns) // the relay goes away
	s2 := <-sessions
	<-s2.prefix
	s2.anns <- moq.Announcement{Broadcast: "live/c", Active: true}
	waitList(t, src, "[{https://relay.test/anon live/c}] <nil>")

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if _, err := src.List(context.Background()); !errors.Is(err, ErrNotReady) {
		t.Errorf("List after Run = %v, want ErrNotReady", err)
	}
}

func TestAnnounceSourceRejectsBadRelay(t *testing.T) {
	src := &AnnounceSource{RelayURL: "http://relay.test", Dial: func(context.Context, string) (moq.Session, error) {
		t.Fatal("dialled an invalid relay URL")
		return nil, nil
	}}
	if err := src.Run(context.Background()); err == nil {
		t.Fatal("Run accepted an http relay URL")
	}
}

package moq

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchLiveness(t *testing.T) {
	t.Run("silence ends the session", func(t *testing.T) {
		ended := make(chan error, 1)
		go watchLiveness(context.Background(), func() uint64 { return 7 }, 40*time.Millisecond, func(err error) { ended <- err })
		select {
		case err := <-ended:
			if !errors.Is(err, ErrRelaySilent) {
				t.Errorf("ended with %v, want ErrRelaySilent", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a silent relay was not noticed")
		}
	})
	t.Run("packets keep it alive", func(t *testing.T) {
		var n atomic.Uint64
		ctx, cancel := context.WithCancel(context.Background())
		ended := make(chan error, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			watchLiveness(ctx, func() uint64 { return n.Add(1) }, 40*time.Millisecond, func(err error) { ended <- err })
		}()
		time.Sleep(200 * time.Millisecond) // five silence windows, every tick sees a packet
		cancel()
		<-done
		select {
		case err := <-ended:
			t.Errorf("a live relay was declared dead: %v", err)
		default:
		}
	})
}

package manifesttest

import (
	"testing"
	"time"
)

// Finish runs fn and fails the test if it has not returned after a minute
// rather than hang forever; it asserts no timing. fn may call t.Error, not
// t.Fatal (it runs in another goroutine).
func Finish(t testing.TB, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("blocked: a reader opened a FIFO")
	}
}

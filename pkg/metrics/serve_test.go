package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeProfiles: the profile listener takes loopback addresses only, and
// serves the pprof index and a heap profile until its context ends.
func TestServeProfiles(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		if ln, err := ListenProfiles(addr); err == nil {
			ln.Close()
			t.Errorf("ListenProfiles(%q) accepted an address that is not loopback", addr)
		}
	}
	ln, err := ListenProfiles("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeProfiles(ctx, ln) }()
	base := "http://" + ln.Addr().String() + "/debug/pprof/"
	for path, want := range map[string]string{"": "goroutine", "heap?debug=1": "heap profile:"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET /debug/pprof/%s: %d %v, body lacks %q", path, resp.StatusCode, err, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeProfiles after cancel: %v", err)
	}
}

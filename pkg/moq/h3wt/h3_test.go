package h3wt

import (
	"net/url"
	"testing"
)

// The WebTransport↔HTTP/3 error code mapping must round-trip and skip the
// reserved (0x21 + 0x1f·n) codepoints, as draft-ietf-webtrans-http3 requires.
func TestErrorCodeMapping(t *testing.T) {
	for _, code := range []uint32{0, 1, 0x1d, 0x1e, 0x1f, 0x33, 0x36, 1 << 20, 1<<32 - 1} {
		h := toHTTPCode(code)
		if (h-0x21)%0x1f == 0 {
			t.Errorf("code %#x maps to reserved %#x", code, h)
		}
		back, ok := fromHTTPCode(h)
		if !ok || back != code {
			t.Errorf("code %#x → %#x → %#x, %v", code, h, back, ok)
		}
	}
	if _, ok := fromHTTPCode(0x100); ok {
		t.Error("H3_NO_ERROR taken for a WebTransport code")
	}
}

// A URL without a port dials 443 (the default relay URL has none); IPv6
// literals keep their brackets.
func TestHostPort(t *testing.T) {
	for raw, want := range map[string]string{
		"https://cdn.moq.dev/anon":     "cdn.moq.dev:443",
		"moqt://127.0.0.1:4443/anon":   "127.0.0.1:4443",
		"moql://[::1]/anon":            "[::1]:443",
		"https://[2001:db8::1]:8443/a": "[2001:db8::1]:8443",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := HostPort(u); got != want {
			t.Errorf("HostPort(%s) = %s, want %s", raw, got, want)
		}
	}
}

package h3wt

import "testing"

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

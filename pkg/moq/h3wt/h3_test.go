package h3wt

import (
	"bytes"
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

func TestSettingsRoundTrip(t *testing.T) {
	r := bytes.NewReader(clientSettings()[1:]) // after the control stream type
	got, err := readSettings(r)
	if err != nil {
		t.Fatal(err)
	}
	if got[settingEnableWebTransport] != 1 || got[settingWTMaxSessions] != 1 || got[settingH3Datagram] != 1 {
		t.Fatalf("settings %v", got)
	}
	dup := appendFrame(nil, frameSettings, []byte{0x33, 0x01, 0x33, 0x01})
	if _, err := readSettings(bytes.NewReader(dup)); err == nil {
		t.Fatal("repeated setting accepted")
	}
	big := append([]byte{frameSettings, 0x80, 0x01, 0x00, 0x00}, make([]byte, 10)...)
	if _, err := readSettings(bytes.NewReader(big)); err == nil {
		t.Fatal("oversized SETTINGS accepted")
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	frame := appendFrame(nil, 0x21, []byte("grease")) // unknown frames are skipped
	frame = appendFrame(frame, frameHeaders, encodeHeaders([][2]string{{":status", "200"}, {"wt-protocol", `"moq-lite-05"`}}))
	got, err := readHeaders(bytes.NewReader(frame))
	if err != nil || got[":status"] != "200" || got["wt-protocol"] != `"moq-lite-05"` {
		t.Fatalf("%v, %v", got, err)
	}
}

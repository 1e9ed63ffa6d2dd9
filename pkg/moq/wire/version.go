// Package wire is the moq-lite codec: stream type ids, control messages, group
// and frame headers for moq-lite-03 to -06, as spoken by moq-relay 0.17.8
// and moq-cli 0.14.8 (crate moq-net 0.3.16).
//
// It is pure: encoders append to a caller's slice, decoders read from a Reader
// and keep no state between calls. Every length and count read from the wire is
// checked against the limits in limits.go before anything is allocated.
package wire

import "fmt"

// Version is a negotiated moq-lite draft.
type Version uint8

const (
	Lite03 Version = 3
	Lite04 Version = 4
	Lite05 Version = 5
	Lite06 Version = 6
)

// Versions lists the supported versions, most preferred first: lite-06 heads
// moq-relay 0.17.8's own list.
var Versions = []Version{Lite06, Lite05, Lite04, Lite03}

// String is the WebTransport subprotocol (and ALPN) name, e.g. "moq-lite-05".
func (v Version) String() string { return fmt.Sprintf("moq-lite-%02d", uint8(v)) }

// ParseVersion maps a subprotocol name to a supported Version.
func ParseVersion(name string) (Version, error) {
	for _, v := range Versions {
		if v.String() == name {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrVersion, name)
}

// HasSetup: lite-05 and later open a SETUP uni stream from each side.
func (v Version) HasSetup() bool { return v >= Lite05 }

// HasAnnounceOK: lite-05 and later announce streams start with ANNOUNCE_OK.
func (v Version) HasAnnounceOK() bool { return v >= Lite05 }

// HasExcludeHop: ANNOUNCE_PLEASE carries the exclude-hop field (04 and 05).
func (v Version) HasExcludeHop() bool { return v == Lite04 || v == Lite05 }

// HasHopList: ANNOUNCE carries hop ids; lite-03 carries only their count.
func (v Version) HasHopList() bool { return v >= Lite04 }

// HasGoaway: the GOAWAY message exists from lite-04.
func (v Version) HasGoaway() bool { return v >= Lite04 }

// HasTrackStream: lite-05 adds TRACK/TRACK_INFO, SUBSCRIBE_START/END in place of
// SUBSCRIBE_OK, and a timestamp prefix on every frame.
func (v Version) HasTrackStream() bool { return v >= Lite05 }

// HasAnnounceIDs: lite-06 announcements are typed messages (START, END,
// RESTART) that carry a route cost; each START implicitly takes the stream's
// next announce id, and END and RESTART name that id instead of the path.
func (v Version) HasAnnounceIDs() bool { return v >= Lite06 }

// HasFrameBounds: lite-06 SUBSCRIBE and SUBSCRIBE_UPDATE carry frame bounds and
// a raw group floor in place of the sequence+1 start, GROUP carries the index
// of its first frame, and the retired Ordered byte is gone from SUBSCRIBE,
// SUBSCRIBE_UPDATE and TRACK_INFO.
func (v Version) HasFrameBounds() bool { return v >= Lite06 }

func (v Version) check() error {
	if v < Lite03 || v > Lite06 {
		return fmt.Errorf("%w: %d", ErrVersion, uint8(v))
	}
	return nil
}

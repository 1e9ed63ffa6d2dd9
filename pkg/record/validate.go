package record

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error about the content of a record or a
// manifest line, as opposed to an error reading or writing it.
var ErrMalformed = errors.New("malformed record")

// The format's limits (docs/record-framing.md, "Limits"). They are constants
// because the next stage depends on them: a manifest line holds a header plus
// the object fields cas-put adds, and manifest.MaxLine is derived from
// MaxHeaderLine, so every header a Reader accepts fits a manifest line. A
// Reader may apply lower limits (Limits), never higher ones.
const (
	// MaxHeaderLine bounds a header line in bytes, without its "\n": both the
	// line as read and the header as EncodeLine writes it (the form cas-put
	// prints), which can be longer, e.g. U+2028 in a name becomes "\u2028".
	MaxHeaderLine = 1 << 20 // 1 MiB
	// MaxName bounds a broadcast or track name, in bytes.
	MaxName = 64 << 10 // 64 KiB
	// MaxFrames bounds the number of frames (and timestamps) of one group.
	MaxFrames = 65536
	// MaxReason bounds a gap reason; reasons are short kebab-case words.
	MaxReason = 64
)

// DefaultMaxPayload is the default payload limit (cas-put --max-payload). Unlike
// the limits above it is policy, not format: a manifest line does not depend on it.
const DefaultMaxPayload = 256 << 20 // 256 MiB

// Limits bound what a Reader accepts. Every field must be positive, and all but
// MaxPayload at most the format's limit of the same name; DefaultLimits gives
// the format's limits and the default payload limit.
type Limits struct {
	// MaxPayload is the largest payload (Size) accepted, in bytes.
	MaxPayload int64
	// MaxHeaderLine is the longest header line accepted, in bytes, excluding the
	// terminating "\n". It is checked before more of the line is buffered, and
	// again on the header's encoding.
	MaxHeaderLine int
	// MaxName is the longest broadcast or track name accepted, in bytes.
	MaxName int
	// MaxFrames is the largest number of frames in one group.
	MaxFrames int
}

// DefaultLimits returns the format's limits and the default payload limit.
func DefaultLimits() Limits {
	l := FormatLimits()
	l.MaxPayload = DefaultMaxPayload
	return l
}

// FormatLimits returns the format's limits, with no payload limit: what every
// stage must accept whatever its payload policy. A header that passes
// Header.Check and FormatLimits().Check can be written, read and indexed.
func FormatLimits() Limits {
	return Limits{
		MaxPayload:    math.MaxInt64,
		MaxHeaderLine: MaxHeaderLine,
		MaxName:       MaxName,
		MaxFrames:     MaxFrames,
	}
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Check reports whether h is a well-formed version 1 header: a known version and
// kind, non-empty valid UTF-8 names, frame sizes summing to Size, and only the
// fields of its kind set. It does not apply size limits; see Limits.Check.
func (h *Header) Check() error {
	if h.V != Version {
		return malformed("unsupported version %d (want %d)", h.V, Version)
	}
	if err := checkName("broadcast", h.Broadcast); err != nil {
		return err
	}
	if err := checkName("track", h.Track); err != nil {
		return err
	}
	if h.ReceivedUnixMs < 0 {
		return malformed("negative received_unix_ms %d", h.ReceivedUnixMs)
	}
	switch h.Kind {
	case KindGroup:
		return h.checkGroup()
	case KindGap:
		return h.checkGap()
	default:
		return malformed("unknown kind %q (want %q or %q)", h.Kind, KindGroup, KindGap)
	}
}

func checkName(field, name string) error {
	if name == "" {
		return malformed("empty %s name", field)
	}
	if !utf8.ValidString(name) {
		return malformed("%s name is not valid UTF-8", field)
	}
	return nil
}

func (h *Header) checkGroup() error {
	if h.First != 0 || h.Last != 0 || h.Reason != "" {
		return malformed("group record carries gap fields (first, last, reason)")
	}
	if h.Size < 0 {
		return malformed("negative size %d", h.Size)
	}
	var sum int64
	for i, f := range h.Frames {
		if f < 0 {
			return malformed("frame %d has negative size %d", i, f)
		}
		sum += f
		if sum > h.Size {
			return malformed("frame sizes exceed size %d", h.Size)
		}
	}
	if sum != h.Size {
		return malformed("frame sizes sum to %d, size is %d", sum, h.Size)
	}
	if len(h.Timestamps) > 0 {
		if len(h.Timestamps) != len(h.Frames) {
			return malformed("%d timestamps for %d frames", len(h.Timestamps), len(h.Frames))
		}
		if h.Timescale == 0 {
			return malformed("timestamps without timescale")
		}
	}
	return nil
}

func (h *Header) checkGap() error {
	if h.Group != 0 || h.Size != 0 || len(h.Frames) != 0 || h.Timescale != 0 || len(h.Timestamps) != 0 {
		return malformed("gap record carries group fields (group, size, frames, timescale, timestamps)")
	}
	if h.First > h.Last {
		return malformed("gap first %d is after last %d", h.First, h.Last)
	}
	if h.Reason == "" || len(h.Reason) > MaxReason {
		return malformed("gap reason must be 1..%d bytes", MaxReason)
	}
	for i := 0; i < len(h.Reason); i++ {
		c := h.Reason[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return malformed("gap reason %q: want lowercase letters, digits and '-'", h.Reason)
		}
	}
	return nil
}

// Check applies the limits to a header that passed Header.Check.
func (l Limits) Check(h *Header) error {
	if err := l.checkFields(h); err != nil {
		return err
	}
	return l.checkEncodedLen(encodedLen(h))
}

// checkFields applies the limits on names, size and frames.
func (l Limits) checkFields(h *Header) error {
	if len(h.Broadcast) > l.MaxName {
		return malformed("broadcast name is %d bytes, limit %d", len(h.Broadcast), l.MaxName)
	}
	if len(h.Track) > l.MaxName {
		return malformed("track name is %d bytes, limit %d", len(h.Track), l.MaxName)
	}
	if h.Size > l.MaxPayload {
		return malformed("payload size %d exceeds limit %d", h.Size, l.MaxPayload)
	}
	if len(h.Frames) > l.MaxFrames {
		return malformed("%d frames exceed limit %d", len(h.Frames), l.MaxFrames)
	}
	return nil
}

// checkEncodedLen applies MaxHeaderLine to the length of a header's encoding
// (without "\n").
func (l Limits) checkEncodedLen(n int) error {
	if n > l.MaxHeaderLine {
		return malformed("header encodes to %d bytes, limit %d", n, l.MaxHeaderLine)
	}
	return nil
}

// encodedLen is the length of h's line as EncodeLine writes it, without "\n".
func encodedLen(h *Header) int {
	var n byteCounter
	if err := EncodeLine(&n, h); err != nil {
		panic(err) // a Header has no field that can fail to encode
	}
	return int(n) - 1
}

type byteCounter int

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

func (l Limits) validate() error {
	if l.MaxPayload <= 0 || l.MaxHeaderLine <= 0 || l.MaxName <= 0 || l.MaxFrames <= 0 {
		return fmt.Errorf("record: every limit must be positive: %+v", l)
	}
	if l.MaxHeaderLine > MaxHeaderLine || l.MaxName > MaxName || l.MaxFrames > MaxFrames {
		return fmt.Errorf("record: limits above the format's (header line %d, name %d, frames %d): %+v",
			MaxHeaderLine, MaxName, MaxFrames, l)
	}
	return nil
}

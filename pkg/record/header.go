package record

// Version is the record framing and manifest schema version written by this code.
const Version = 1

// Kinds of record.
const (
	// KindGroup carries one received MoQ group: its frames concatenated, exactly
	// as received.
	KindGroup = "group"
	// KindGap says that the groups First..Last (inclusive) of a track were not
	// archived, and why. It carries no payload.
	KindGap = "gap"
)

// Reasons for a gap.
const (
	GapDisconnected = "disconnected" // the session to the relay ended; these groups passed meanwhile
	GapReset        = "reset"        // the relay reset the group's stream (dropped or truncated group)
	GapSkipped      = "skipped"      // the relay's sequence jumped over these groups within one subscription
	GapTooLarge     = "too-large"    // the group exceeded the configured size limit or the format's limits (MaxFrames, MaxHeaderLine)
	GapStoreFailed  = "store-failed" // the archiver could not store the group (disk full, read-only, I/O error)
	GapExpired      = "expired"      // missed while disconnected, and no longer in the relay's cache when asked for
)

// Header is the metadata of one record. It is the JSON header line of the record
// framing (docs/record-framing.md) and, with the object fields added by the CAS
// stage, the body of a manifest line (docs/manifest.md).
type Header struct {
	V         int    `json:"v"`
	Kind      string `json:"kind"`
	Broadcast string `json:"broadcast"`
	Track     string `json:"track"`

	// Group is the MoQ group sequence (KindGroup).
	Group uint64 `json:"group"`
	// Frames holds the size in bytes of each frame of the group, in order; the
	// payload is their concatenation (KindGroup).
	Frames []int64 `json:"frames,omitempty"`
	// Size is the payload size in bytes, the sum of Frames (KindGroup).
	Size int64 `json:"size"`
	// Timescale and Timestamps are the per-frame presentation timestamps sent by
	// moq-lite-05 and later, in units per second; absent on older versions.
	Timescale  uint64  `json:"timescale,omitempty"`
	Timestamps []int64 `json:"timestamps,omitempty"`

	// First and Last bound the missing groups, inclusive (KindGap).
	First  uint64 `json:"first,omitempty"`
	Last   uint64 `json:"last,omitempty"`
	Reason string `json:"reason,omitempty"`

	// ReceivedUnixMs is when the group was completely received (KindGroup) or
	// when the gap was detected (KindGap), in Unix milliseconds.
	ReceivedUnixMs int64 `json:"received_unix_ms"`
}

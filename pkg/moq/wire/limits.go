package wire

// Limits on what a decoder accepts. They bound every allocation made for data
// read from the network; each is at or below the corresponding limit of moq-net
// 0.3.16 unless noted, so nothing the real relay sends is refused.
const (
	// MaxMessageSize bounds the body of a length-delimited control message
	// (ANNOUNCE*, SUBSCRIBE*, TRACK*, GOAWAY, GROUP header). moq-net allows 64 MiB;
	// nothing a subscriber receives comes close to 64 KiB, so we refuse earlier.
	MaxMessageSize = 64 << 10 // 64 KiB

	// MaxSetupSize bounds a lite-05 SETUP message (moq-net MAX_SETUP_SIZE).
	MaxSetupSize = 64 << 10 // 64 KiB

	// MaxPathLength bounds a broadcast path or prefix in bytes. moq-net bounds only
	// the segment count (MaxPathParts); this is our own cap.
	MaxPathLength = 4096

	// MaxPathParts bounds the '/'-separated segments of a path (moq-net
	// Path::MAX_PARTS, matching the IETF 32-field namespace limit).
	MaxPathParts = 32

	// MaxStringLength bounds any other string: track names and the GOAWAY URI
	// (moq-net caps the URI at 8192 bytes).
	MaxStringLength = 8192

	// MaxFrameSize bounds one frame's payload (moq-net's per-frame cap,
	// MAX_CACHE_BYTES).
	MaxFrameSize = 32 << 20 // 32 MiB

	// MaxGroupFrames bounds the frames in one group (moq-net MAX_GROUP_FRAMES).
	MaxGroupFrames = 8192

	// MaxHops bounds an announcement's hop chain (moq-net MAX_HOPS).
	MaxHops = 32

	// MaxParams bounds the parameters of a SETUP message (moq-net MAX_PARAMS).
	MaxParams = 64

	// MaxVarint is the largest QUIC variable-length integer (RFC 9000 §16).
	MaxVarint = 1<<62 - 1
)

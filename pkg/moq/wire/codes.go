package wire

// Stream reset codes (moq-net 0.3.16 error.rs StreamError::to_code). A relay
// resets a subscribe stream with CodeNotFound or CodeUnroutable when the
// broadcast or track does not exist, and a group stream with CodeOld,
// CodeTooFarBehind or CodeEvicted when it drops the group.
const (
	CodeInternal          = 0x0 // also what moq-net sends for an unexpected stream
	CodeCancel            = 0x1
	CodeDeliveryTimeout   = 0x2
	CodeSessionClosed     = 0x3
	CodeGoingAway         = 0x4
	CodeTooFarBehind      = 0x5
	CodeMalformedTrack    = 0x12
	CodeControlTimeout    = 0x31
	CodeGroupTooLarge     = 0x32
	CodeNotFound          = 0x33
	CodeOld               = 0x34
	CodeEvicted           = 0x35
	CodeUnroutable        = 0x36
	CodeWrongSize         = 0x37
	CodeFrameTooLarge     = 0x38
	CodeTimestampMismatch = 0x39
)

// Session close codes (moq-net 0.3.16 error.rs SessionError::to_code).
const (
	SessionCancel            = 0x0
	SessionInternal          = 0x1
	SessionUnauthorized      = 0x2
	SessionProtocolViolation = 0x3
	SessionGoawayTimeout     = 0x10
	SessionTimeout           = 0x11
	SessionVersion           = 0x15
)

// Control (bidirectional) stream types, the first varint on the stream.
const (
	StreamAnnounce  = 1
	StreamSubscribe = 2
	StreamFetch     = 3 // lite-05
	StreamProbe     = 4
	StreamGoaway    = 5 // lite-04
	StreamTrack     = 6 // lite-05
)

// Data (unidirectional) stream types.
const (
	StreamGroup = 0
	StreamSetup = 1 // lite-05
)

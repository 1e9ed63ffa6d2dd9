package wire

import "errors"

var (
	// ErrTooLarge: a length or count exceeds a limit in limits.go.
	ErrTooLarge = errors.New("exceeds limit")
	// ErrTrailingBytes: a length-delimited message holds more than its fields.
	ErrTrailingBytes = errors.New("trailing bytes in message")
	// ErrInvalid: a field holds a value the protocol does not allow.
	ErrInvalid = errors.New("invalid value")
	// ErrVersion: the message or field does not exist in this version.
	ErrVersion = errors.New("unsupported moq-lite version")
)

package moq

import "errors"

var (
	// ErrNotFound: the relay has no such broadcast or track.
	ErrNotFound = errors.New("moq: not found")
	// ErrGroupReset: the relay reset a group's stream before it was complete.
	ErrGroupReset = errors.New("moq: group reset by relay")
	// ErrTooLarge: a group's frame or frame count exceeds the limits of package
	// wire; the rest of the group is abandoned.
	ErrTooLarge = errors.New("moq: group exceeds a limit")
)

// ErrGoAway: the relay sent GOAWAY and the session ended; reconnect (to the
// URI in the error text, if one is given).
var ErrGoAway = errors.New("moq: relay sent GOAWAY")

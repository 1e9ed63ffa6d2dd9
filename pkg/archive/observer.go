package archive

import "time"

// Observer is told of a worker's events as they happen, for metrics (package
// metrics). Methods are called from the worker's goroutines, concurrently and
// for many broadcasts when workers share one Observer: implementations must be
// safe for concurrent use and must not block.
type Observer interface {
	// GroupStored: a group of size bytes is durable; commit is how long the
	// sink's Commit took.
	GroupStored(broadcast, track string, size int64, commit time.Duration)
	// Gap: a gap record for groups groups was written.
	Gap(broadcast, track, reason string, groups uint64)
	// StoreFailed: writing a group or a gap record to the sink failed.
	StoreFailed(broadcast, track string)
	// Reconnected: a session ended and the worker backs off to reconnect.
	Reconnected(broadcast string)
	// Announced: the relay announced the broadcast (true), or unannounced it
	// or did not announce it within AnnounceWait (false).
	Announced(broadcast string, announced bool)
	// Stopped: the worker ended; it reports nothing more.
	Stopped(broadcast string)
}

// noObserver is the Observer of a Config without one.
type noObserver struct{}

func (noObserver) GroupStored(string, string, int64, time.Duration) {}
func (noObserver) Gap(string, string, string, uint64)               {}
func (noObserver) StoreFailed(string, string)                       {}
func (noObserver) Reconnected(string)                               {}
func (noObserver) Announced(string, bool)                           {}
func (noObserver) Stopped(string)                                   {}

package manifest

import (
	"slices"

	"github.com/every-channel/ec-node/pkg/record"
)

// SessionReorder is how far a group sequence may fall below the highest one of
// its session and still belong to it: groups are appended as they complete,
// slightly out of order (the archiver's gap tracker uses the same window).
const SessionReorder = 4

// Session is one publisher session of a track: a run of manifest lines whose
// group sequences belong to one numbering. A publisher that restarts numbers
// its groups from 0 again, so sequences identify a group only within a session.
// Sessions are derived when reading (docs/manifest.md, "Publisher sessions");
// the files do not mark them.
type Session struct {
	// Number is the session's 1-based position in the file.
	Number int
	// Entries are the session's lines, in file order.
	Entries []Entry
	// Line is the file line of Entries[0] (1-based).
	Line int
}

// ReceivedRange returns the first and last receive time of the session's groups
// (Unix ms), or ok false when it has none.
func (s *Session) ReceivedRange() (first, last int64, ok bool) {
	for _, e := range s.Entries {
		if e.Kind != record.KindGroup {
			continue
		}
		if !ok || e.ReceivedUnixMs < first {
			first = e.ReceivedUnixMs
		}
		if !ok || e.ReceivedUnixMs > last {
			last = e.ReceivedUnixMs
		}
		ok = true
	}
	return first, last, ok
}

// SplitSessions divides the lines of one track file into publisher sessions.
// A group line starts a new session when
//
//   - its sequence was already used in the current session by another object;
//   - or it lies more than SessionReorder below the highest sequence of the
//     current session;
//   - or it lies below that highest sequence and a catalog was received since
//     the previous group line (catalogs holds the receive times, Unix ms, of
//     the broadcast's catalog lines; a restarted publisher sends its catalog
//     first, which tells its restart from a late group of a short session).
//
// A repeated (group, blake3) line is a duplicate (manifest check reports it),
// not a restart. Gap lines never start a session.
func SplitSessions(entries []Entry, catalogs []int64) []Session {
	var (
		sessions []Session
		cur      *Session
		seen     map[uint64]string // sequence → blake3 in the current session
		high     uint64
		prev     int64 // receive time of the previous group line
	)
	catalogSince := func(t int64) bool {
		return slices.ContainsFunc(catalogs, func(c int64) bool { return prev < c && c <= t })
	}
	for i, e := range entries {
		if e.Kind == record.KindGroup && cur != nil {
			id, used := seen[e.Group]
			switch {
			case used && id != e.BLAKE3, e.Group+SessionReorder < high,
				!used && e.Group < high && catalogSince(e.ReceivedUnixMs):
				cur = nil
			}
		}
		if cur == nil {
			sessions = append(sessions, Session{Number: len(sessions) + 1, Line: i + 1})
			cur = &sessions[len(sessions)-1]
			seen, high = map[uint64]string{}, 0
		}
		cur.Entries = append(cur.Entries, e)
		if e.Kind == record.KindGroup {
			seen[e.Group] = e.BLAKE3
			high = max(high, e.Group)
			prev = e.ReceivedUnixMs
		}
	}
	return sessions
}

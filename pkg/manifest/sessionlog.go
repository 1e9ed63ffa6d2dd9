package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/internal/strictjson"
	"github.com/every-channel/ec-node/pkg/record"
)

// SessionLogName is the session log, directly in the manifest directory
// (docs/manifest.md, "SubscriberSession log"). It starts with '.', which no escaped name
// does, so no broadcast directory can have its name; and track manifest files
// live one level down, in broadcast directories.
const SessionLogName = ".sessions.jsonl"

// SessionLogVersion is the format version of a session log line.
const SessionLogVersion = 1

// Limits of a session log line.
const (
	// MaxSessionLine bounds a line, without "\n": a broadcast name of
	// record.MaxName bytes fits even when every byte is written as \u00XX.
	MaxSessionLine = record.MaxHeaderLine
	// MaxRelayURL bounds the relay field.
	MaxRelayURL = 4096
	// maxToken bounds the short fields (tool, protocol, version, transport,
	// ALPN, subprotocol).
	maxToken = 64
)

// SubscriberSession is one line of the session log: a subscriber session that
// recorded a broadcast, and how it was negotiated. (Publisher sessions, which
// readers derive from the group sequences, are Session.)
type SubscriberSession struct {
	V int `json:"v"`
	// StartedUnixMs is when the session started recording the broadcast (it
	// was announced, or the relay does not announce).
	StartedUnixMs int64 `json:"started_unix_ms"`
	// Tool is the program that wrote the line: "wt-archive", "archive-auto",
	// "moq-sub".
	Tool string `json:"tool"`
	PID  int    `json:"pid"`
	// Broadcast is the broadcast name, as in the manifests.
	Broadcast string `json:"broadcast"`
	// Relay is the relay's URL (https, or moqt/moql for raw QUIC) without
	// query (so without a ?jwt= token), user info or fragment.
	Relay string `json:"relay"`
	// Protocol is the protocol family: "moq-lite" or "ietf".
	Protocol string `json:"protocol"`
	// Version is the negotiated version: "moq-lite-06", "moq-transport-14", ...
	Version string `json:"version"`
	// Transport is "webtransport" or "quic" (raw QUIC).
	Transport string `json:"transport"`
	// ALPN is the TLS ALPN of the QUIC connection ("h3" under WebTransport, the
	// moq version over raw QUIC).
	ALPN string `json:"alpn"`
	// Subprotocol is the WebTransport subprotocol the relay selected; absent
	// when it selected none (IETF versions are then negotiated in SETUP).
	Subprotocol string `json:"subprotocol,omitempty"`
}

// RelayForLog returns a relay URL without query, user info and fragment: what
// a SubscriberSession's Relay field holds.
func RelayForLog(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("manifest: relay URL does not parse") // the error would quote a token
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String(), nil
}

// Validate checks a session log line's fields.
func (s *SubscriberSession) Validate() error {
	if s.V != SessionLogVersion {
		return fmt.Errorf("%w: session log version %d, want %d", record.ErrMalformed, s.V, SessionLogVersion)
	}
	if s.StartedUnixMs < 0 || s.PID < 0 {
		return fmt.Errorf("%w: negative started_unix_ms or pid", record.ErrMalformed)
	}
	if s.Broadcast == "" || len(s.Broadcast) > record.MaxName {
		return fmt.Errorf("%w: broadcast of %d bytes, want 1..%d", record.ErrMalformed, len(s.Broadcast), record.MaxName)
	}
	if err := checkRelay(s.Relay); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v  string
		optional bool
	}{
		{"tool", s.Tool, false}, {"protocol", s.Protocol, false}, {"version", s.Version, false},
		{"transport", s.Transport, false}, {"alpn", s.ALPN, false}, {"subprotocol", s.Subprotocol, true},
	} {
		if f.v == "" && f.optional {
			continue
		}
		if !isToken(f.v) {
			return fmt.Errorf("%w: %s %q: want 1..%d bytes of [A-Za-z0-9._-]", record.ErrMalformed, f.name, f.v, maxToken)
		}
	}
	return nil
}

// relaySchemes are the relay URL schemes a session can dial (pkg/moq's
// SchemeWebTransport, SchemeQUIC and SchemeQUICLite).
var relaySchemes = []string{"https", "moqt", "moql"}

func checkRelay(relay string) error {
	u, err := url.Parse(relay)
	switch {
	case len(relay) > MaxRelayURL:
		return fmt.Errorf("%w: relay URL of %d bytes, limit %d", record.ErrMalformed, len(relay), MaxRelayURL)
	case err != nil || !slices.Contains(relaySchemes, u.Scheme) || u.Host == "":
		return fmt.Errorf("%w: relay %q is not an https, moqt or moql URL", record.ErrMalformed, relay)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		// A query may hold a ?jwt= token, which must never be written down.
		return fmt.Errorf("%w: relay URL carries user info, a query or a fragment", record.ErrMalformed)
	}
	return nil
}

func isToken(s string) bool {
	if s == "" || len(s) > maxToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !passes(c, false) {
			return false
		}
	}
	return true
}

// ParseSessionLogLine decodes one session log line (without its "\n") strictly,
// as ParseLine does a manifest line, and validates it.
func ParseSessionLogLine(line []byte) (SubscriberSession, error) {
	var s SubscriberSession
	if err := strictjson.Decode(line, &s); err != nil {
		return SubscriberSession{}, fmt.Errorf("%w: %w", record.ErrMalformed, err)
	}
	if err := s.Validate(); err != nil {
		return SubscriberSession{}, err
	}
	return s, nil
}

// appendSessionLogLine appends s's line, with its "\n", to b.
func appendSessionLogLine(b []byte, s SubscriberSession) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	if err := record.EncodeLine(buf, s); err != nil {
		return b, err
	}
	if n := buf.Len() - len(b) - 1; n > MaxSessionLine {
		return b, fmt.Errorf("%w: session log line of %d bytes, limit %d", record.ErrMalformed, n, MaxSessionLine)
	}
	return buf.Bytes(), nil
}

// SessionLogDecoder reads session log lines with bounded memory.
type SessionLogDecoder struct{ lines lineReader }

// NewSessionLogDecoder returns a SessionLogDecoder reading r.
func NewSessionLogDecoder(r io.Reader) *SessionLogDecoder {
	return &SessionLogDecoder{lineReader{br: bufio.NewReaderSize(r, 64<<10), max: MaxSessionLine}}
}

// Next returns the next line, io.EOF at the end of input, or a *LineError;
// a last line without "\n" is an error wrapping io.ErrUnexpectedEOF.
func (d *SessionLogDecoder) Next() (SubscriberSession, error) {
	line, err := d.lines.next()
	if err != nil {
		return SubscriberSession{}, err
	}
	s, err := ParseSessionLogLine(line)
	if err != nil {
		return SubscriberSession{}, &LineError{Line: d.lines.n, Err: err}
	}
	return s, nil
}

// Line is the number of the line last returned by Next.
func (d *SessionLogDecoder) Line() int { return d.lines.n }

// SessionLog appends to the session log of one manifest directory, with the
// guarantees of a manifest file: each line is written by one write(2) under
// the file's exclusive flock (so writers in any processes never interleave),
// fsynced before Append returns, a torn last line is cut first, and nothing
// below the manifest directory is reached through a symbolic link. It is safe
// for concurrent use.
type SessionLog struct {
	mu   sync.Mutex
	root *safefs.Root
	path string
	log  *slog.Logger
}

// OpenSessionLog returns the session log of the manifest directory dir,
// creating dir (durably) if needed; the file is created by the first Append.
func OpenSessionLog(dir string, log *slog.Logger) (*SessionLog, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	return &SessionLog{root: root, path: filepath.Join(dir, SessionLogName), log: log}, nil
}

// Append validates s and appends its line durably. Sessions are rare (one per
// connection and broadcast), so the file is opened for each: a log removed or
// replaced meanwhile is recreated, never written through a stale descriptor.
func (l *SessionLog) Append(s SubscriberSession) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("manifest: session log: %w", err)
	}
	line, err := appendSessionLogLine(nil, s)
	if err != nil {
		return fmt.Errorf("manifest: session log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := openFile(l.root, SessionLogName)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("manifest: lock %s: %w", l.path, err)
	}
	defer flock(fd, syscall.LOCK_UN) //nolint:errcheck // closing the file releases it anyway
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	end, err := l.cutTornTail(f, fi.Size())
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		if terr := f.Truncate(end); terr != nil {
			l.log.Error("manifest: cannot cut partial write; the next append repairs it", "path", l.path, "err", terr)
		}
		return fmt.Errorf("manifest: append to %s: %w", l.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("manifest: fsync %s: %w", l.path, err)
	}
	return nil
}

// cutTornTail cuts a last line without "\n", or a last line that is not JSON
// at all, as the manifest appender does (docs/manifest.md, "Torn lines"), and
// returns where the file now ends. The caller holds the flock.
func (l *SessionLog) cutTornTail(f *os.File, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	// The last line and the "\n" before it are within MaxSessionLine+2 bytes
	// when the last line is within the limit.
	n := min(size, MaxSessionLine+2)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil {
		return 0, fmt.Errorf("manifest: read %s: %w", l.path, err)
	}
	body, complete := bytes.CutSuffix(tail, []byte{'\n'})
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 && n < size {
		if complete {
			return size, nil // an over-long complete line: manifest check reports it
		}
		return 0, fmt.Errorf("manifest: %s: last line has no newline and exceeds %d bytes; see ec-node manifest check", l.path, MaxSessionLine)
	}
	last := body[i+1:]
	reason := ""
	switch {
	case !complete:
		reason = "no final newline"
	case !json.Valid(last):
		reason = "last line is not JSON"
	default:
		return size, nil
	}
	off := size - n + int64(i+1)
	if err := f.Truncate(off); err != nil {
		return 0, fmt.Errorf("manifest: repair %s: %w", l.path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("manifest: repair %s: %w", l.path, err)
	}
	l.log.Warn("manifest: cut torn last line", "path", l.path, "offset", off, "bytes", size-off,
		"reason", reason, "head", string(last[:min(len(last), 80)]))
	return off, nil
}

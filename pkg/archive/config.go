package archive

import (
	"log/slog"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
)

// DefaultTracks is the deployed track list (ECP-0070): the default of
// Config.FallbackTracks.
var DefaultTracks = []string{"catalog.json", "init.mp4", "video0.m4s", "audio0.m4s"}

// Config configures one broadcast worker (Run).
type Config struct {
	RelayURL  string // https (WebTransport) or moqt/moql (raw QUIC) URL; the path is the session root, ?jwt= is passed through
	Broadcast string // broadcast path relative to the session root
	// Tracks, when set, is the exact list of tracks to archive. When empty the
	// worker follows catalog.json, and archives FallbackTracks when the
	// broadcast has none.
	Tracks []string
	// FallbackTracks are archived when the broadcast has no catalog.json
	// (nil: DefaultTracks).
	FallbackTracks []string

	Store       cas.Store
	ManifestDir string

	Dial moq.DialOptions

	// AnnounceWait bounds how long a session waits for the broadcast to be
	// announced before it gives up and reconnects (0: a default).
	AnnounceWait time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay (0: defaults).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts ends Run with an error after that many consecutive failed
	// sessions (0: retry forever).
	MaxAttempts int
	// MaxGroupBytes caps one group's payload (0: a default).
	MaxGroupBytes int64
	// StallTimeout ends a session in which no group arrived on any track for
	// that long, so that a connection that is up but silent is retried rather
	// than trusted (0: a default).
	StallTimeout time.Duration

	// BackfillMaxAge is how far back the groups missed while disconnected (or
	// while the worker was down) are asked for from the relay's cache, when the
	// session supports it (moq.Backfiller). 0: DefaultBackfillMaxAge, the
	// relay's default cache duration; negative: never back-fill, record the
	// missed groups as gaps at once.
	BackfillMaxAge time.Duration

	// StatusFile, when set, receives the worker's Status as JSON every few seconds.
	StatusFile string
	// OnStatus, when set, is called with the worker's Status every few seconds
	// (wt-archive feeds it to systemd's sd_notify STATUS= and watchdog).
	OnStatus func(Status)
	// Observer, when set, is told of every group, gap, reconnect and
	// announcement as it happens (the metrics of --metrics-listen).
	Observer Observer

	// SessionLog, when set, gets one line for every session that records the
	// broadcast (docs/manifest.md, "Session log"); Run opens the manifest
	// directory's when it is nil. Tool names the program in it ("wt-archive",
	// "archive-auto", "moq-sub"; empty: DefaultTool).
	SessionLog *manifest.SessionLog
	Tool       string

	Logger *slog.Logger
}

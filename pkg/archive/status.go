package archive

// Status is a worker's liveness report, written atomically as JSON to
// Config.StatusFile every few seconds and read by `ec-node archive-status`.
// A worker that is connected but receives nothing shows a stale LastGroupUnixMs.
type Status struct {
	Broadcast string `json:"broadcast"`
	Relay     string `json:"relay"` // relay URL without query (tokens never appear here)
	// State is one of "connecting", "waiting" (for the broadcast to be
	// announced), "archiving", "backoff", "stopped".
	State           string   `json:"state"`
	Version         string   `json:"version,omitempty"` // negotiated protocol
	Tracks          []string `json:"tracks,omitempty"`
	Groups          int64    `json:"groups"`
	Bytes           int64    `json:"bytes"`
	NewObjects      int64    `json:"new_objects"`
	Gaps            int64    `json:"gaps"`
	Reconnects      int64    `json:"reconnects"`
	LastGroupUnixMs int64    `json:"last_group_unix_ms,omitempty"`
	LastError       string   `json:"last_error,omitempty"`
	StartedUnixMs   int64    `json:"started_unix_ms"`
	UpdatedUnixMs   int64    `json:"updated_unix_ms"`
	PID             int      `json:"pid"`
}

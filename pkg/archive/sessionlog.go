package archive

import (
	"fmt"
	"os"
	"time"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/moq"
)

// DefaultTool names the writer in the session log when Config.Tool is empty.
const DefaultTool = "ec-node"

// logSession appends the session that starts recording the broadcast to the
// session log, if there is one: when, where, and how it was negotiated. A
// session that cannot say how it was negotiated (a stand-in) is not logged.
// A line that cannot be written ends the session like a store failure: the
// manifest directory is failing.
func (w *worker) logSession(sess moq.Session) error {
	if w.cfg.SessionLog == nil {
		return nil
	}
	n, ok := sess.(moq.Negotiator)
	if !ok {
		w.log.Debug("session log: the session does not report its negotiation; not logged")
		return nil
	}
	relay, err := manifest.RelayForLog(w.cfg.RelayURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	neg := n.Negotiation()
	err = w.cfg.SessionLog.Append(manifest.SubscriberSession{
		V: manifest.SessionLogVersion, StartedUnixMs: time.Now().UnixMilli(), Tool: w.cfg.Tool, PID: os.Getpid(),
		Broadcast: w.cfg.Broadcast, Relay: relay, Protocol: neg.Protocol, Version: neg.Version,
		Transport: neg.Transport, ALPN: neg.ALPN, Subprotocol: neg.Subprotocol,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	return nil
}

package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/every-channel/ec-node/pkg/archive"
)

// Report is one worker's status as archive-status shows it.
type Report struct {
	Instance string `json:"instance"`
	archive.Status
	// LastGroupAge is the time since the last archived group, or since the
	// worker started when it has archived none yet.
	LastGroupAge time.Duration `json:"last_group_age_ns"`
	Stale        bool          `json:"stale"`
	Err          string        `json:"error,omitempty"` // the status file could not be read
}

// ReadStatusDir reads every worker status file in dir. A worker is stale when
// it has not stopped and either has archived nothing for staleAfter or has not
// refreshed its status file for staleAfter (it hangs). Unreadable files are
// reported, not skipped, so that a broken worker is visible.
func ReadStatusDir(dir string, now time.Time, staleAfter time.Duration) ([]Report, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("status dir: %w", err)
	}
	var reports []Report
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		r := Report{Instance: strings.TrimSuffix(name, ".json")}
		st, err := archive.ReadStatus(filepath.Join(dir, name))
		if err != nil {
			r.Err, r.Stale = err.Error(), true
			reports = append(reports, r)
			continue
		}
		r.Status = st
		last := r.LastGroupUnixMs
		if last == 0 {
			last = r.StartedUnixMs
		}
		r.LastGroupAge = now.Sub(time.UnixMilli(last))
		updatedAge := now.Sub(time.UnixMilli(r.UpdatedUnixMs))
		r.Stale = r.State != "stopped" && (r.LastGroupAge > staleAfter || updatedAge > staleAfter)
		reports = append(reports, r)
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Instance < reports[j].Instance })
	return reports, nil
}

// removeStatus deletes the status file of a worker that was stopped for good.
func removeStatus(statusDir, instance string) {
	if statusDir == "" {
		return
	}
	// A file that cannot be removed shows as "stopped" in archive-status.
	_ = os.Remove(StatusFile(statusDir, instance))
	_ = os.Remove(MetricsFile(StatusFile(statusDir, instance)))
}

// checkLiveness logs workers that became stale or recovered and returns how
// many wanted workers are stale.
func (s *Supervisor) checkLiveness(want map[string]bool) int {
	if s.cfg.StatusDir == "" {
		return 0
	}
	reports, err := ReadStatusDir(s.cfg.StatusDir, s.now(), s.cfg.StaleAfter)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot read worker status", "err", err)
		}
		return 0
	}
	stale := 0
	for _, r := range reports {
		if !want[r.Instance] {
			continue
		}
		switch {
		case r.Stale && !s.stale[r.Instance]:
			s.log.Warn("worker stalled: nothing archived recently", "broadcast", r.Broadcast, "instance", r.Instance,
				"state", r.State, "last_group_age", r.LastGroupAge.Round(time.Second), "last_error", r.LastError, "err", r.Err)
		case !r.Stale && s.stale[r.Instance]:
			s.log.Info("worker archiving again", "broadcast", r.Broadcast, "instance", r.Instance)
		}
		s.stale[r.Instance] = r.Stale
		if r.Stale {
			stale++
		}
	}
	return stale
}

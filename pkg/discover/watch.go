package discover

import (
	"context"
	"log/slog"
	"sort"
	"time"
)

// Event kinds.
const (
	Added   = "add"
	Removed = "remove"
)

// Event reports a broadcast appearing in or leaving the listing.
type Event struct {
	Kind string `json:"event"`
	Broadcast
}

// Diff returns the events that turn listing prev into next: removals first,
// each group sorted by relay URL and name.
func Diff(prev, next []Broadcast) []Event {
	in := func(list []Broadcast) map[Broadcast]bool {
		m := make(map[Broadcast]bool, len(list))
		for _, b := range list {
			m[b] = true
		}
		return m
	}
	before, after := in(prev), in(next)
	var removed, added []Broadcast
	for b := range before {
		if !after[b] {
			removed = append(removed, b)
		}
	}
	for b := range after {
		if !before[b] {
			added = append(added, b)
		}
	}
	Sort(removed)
	Sort(added)
	events := make([]Event, 0, len(removed)+len(added))
	for _, b := range removed {
		events = append(events, Event{Kind: Removed, Broadcast: b})
	}
	for _, b := range added {
		events = append(events, Event{Kind: Added, Broadcast: b})
	}
	return events
}

// Sort orders broadcasts by relay URL, then name.
func Sort(list []Broadcast) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].RelayURL != list[j].RelayURL {
			return list[i].RelayURL < list[j].RelayURL
		}
		return list[i].Name < list[j].Name
	})
}

// Watch lists src every interval and passes each change to emit, until ctx ends
// (nil) or emit fails (its error). A failed listing is logged and changes
// nothing: an unreachable directory does not mean every broadcast ended.
func Watch(ctx context.Context, src Source, interval time.Duration, logger *slog.Logger, emit func(Event) error) error {
	var current []Broadcast
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		list, err := src.List(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logger.Warn("discovery failed; keeping the previous listing", "err", err)
		} else {
			for _, ev := range Diff(current, list) {
				if err := emit(ev); err != nil {
					return err
				}
			}
			current = list
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Package metrics exports the archive workers' metrics in the Prometheus text
// format: Archive collects them (it is an archive.Observer) and Serve answers
// /metrics. The names, labels and alert rules are specified in docs/metrics.md.
//
// Label values come from the network (broadcast and track names), so their
// number is bounded by what the workers accept: archive-auto runs at most
// --max-broadcasts discovered broadcasts (plus the --broadcast ones), a catalog
// names at most catalog.MaxTracks tracks, and a stopped worker's series are
// deleted.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Archive holds the metrics of the archive workers of one process.
type Archive struct {
	groups      *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	gaps        *prometheus.CounterVec
	gapGroups   *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	reconnects  *prometheus.CounterVec
	commit      *prometheus.HistogramVec

	ageDesc, announcedDesc *prometheus.Desc

	now        func() time.Time
	mu         sync.Mutex
	broadcasts map[string]*broadcastState
}

// broadcastState is what the scrape-time gauges of one broadcast derive from.
type broadcastState struct {
	since     time.Time // the last durable group, or the first event when none yet
	announced bool
}

// NewArchive returns the archive metrics, with no series yet.
func NewArchive() *Archive {
	bt := []string{"broadcast", "track"}
	return &Archive{
		groups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ec_archived_groups_total", Help: "Groups made durable in the CAS and the manifest.",
		}, bt),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ec_archived_bytes_total", Help: "Payload bytes of the groups made durable.",
		}, bt),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ec_gaps_total", Help: "Gap records written, by reason.",
		}, []string{"broadcast", "track", "reason"}),
		gapGroups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ec_gap_groups_total", Help: "Groups not archived (the span of the gap records), by reason.",
		}, []string{"broadcast", "track", "reason"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ec_store_errors_total", Help: "Failed writes of a group or a gap record to the CAS or the manifest.",
		}, bt),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ec_reconnects_total", Help: "Sessions that ended and were retried after a backoff.",
		}, []string{"broadcast"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ec_commit_duration_seconds",
			Help:    "Time to make one received group durable (CAS object, fsyncs, manifest line).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. 4 s
		}, []string{"broadcast"}),
		ageDesc: prometheus.NewDesc("ec_last_durable_group_age_seconds",
			"Seconds since the newest durable group of any track of the broadcast (before the first: since the worker first reported the broadcast announced or not).",
			[]string{"broadcast"}, nil),
		announcedDesc: prometheus.NewDesc("ec_broadcast_announced",
			"1 while the relay announces the broadcast, as last heard by its worker; 0 after it unannounced it or did not announce it in time.",
			[]string{"broadcast"}, nil),
		now:        time.Now,
		broadcasts: map[string]*broadcastState{},
	}
}

// state returns the scrape-time state of a broadcast, creating it. a.mu is held.
func (a *Archive) state(broadcast string) *broadcastState {
	st, ok := a.broadcasts[broadcast]
	if !ok {
		st = &broadcastState{since: a.now()}
		a.broadcasts[broadcast] = st
	}
	return st
}

// GroupStored implements archive.Observer.
func (a *Archive) GroupStored(broadcast, track string, size int64, commit time.Duration) {
	a.groups.WithLabelValues(broadcast, track).Inc()
	a.bytes.WithLabelValues(broadcast, track).Add(float64(size))
	a.commit.WithLabelValues(broadcast).Observe(commit.Seconds())
	a.mu.Lock()
	a.state(broadcast).since = a.now()
	a.mu.Unlock()
}

// Gap implements archive.Observer.
func (a *Archive) Gap(broadcast, track, reason string, groups uint64) {
	a.gaps.WithLabelValues(broadcast, track, reason).Inc()
	a.gapGroups.WithLabelValues(broadcast, track, reason).Add(float64(groups))
}

// StoreFailed implements archive.Observer.
func (a *Archive) StoreFailed(broadcast, track string) {
	a.storeErrors.WithLabelValues(broadcast, track).Inc()
}

// Reconnected implements archive.Observer.
func (a *Archive) Reconnected(broadcast string) {
	a.reconnects.WithLabelValues(broadcast).Inc()
}

// Announced implements archive.Observer.
func (a *Archive) Announced(broadcast string, announced bool) {
	a.mu.Lock()
	a.state(broadcast).announced = announced
	a.mu.Unlock()
}

// Stopped implements archive.Observer: the broadcast's series are deleted, so
// that broadcasts that come and go do not accumulate.
func (a *Archive) Stopped(broadcast string) {
	match := prometheus.Labels{"broadcast": broadcast}
	for _, v := range []*prometheus.CounterVec{a.groups, a.bytes, a.gaps, a.gapGroups, a.storeErrors, a.reconnects} {
		v.DeletePartialMatch(match)
	}
	a.commit.DeletePartialMatch(match)
	a.mu.Lock()
	delete(a.broadcasts, broadcast)
	a.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (a *Archive) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range a.collectors() {
		c.Describe(ch)
	}
	ch <- a.ageDesc
	ch <- a.announcedDesc
}

// Collect implements prometheus.Collector.
func (a *Archive) Collect(ch chan<- prometheus.Metric) {
	for _, c := range a.collectors() {
		c.Collect(ch)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for name, st := range a.broadcasts {
		announced := 0.0
		if st.announced {
			announced = 1
		}
		ch <- prometheus.MustNewConstMetric(a.ageDesc, prometheus.GaugeValue, now.Sub(st.since).Seconds(), name)
		ch <- prometheus.MustNewConstMetric(a.announcedDesc, prometheus.GaugeValue, announced, name)
	}
}

func (a *Archive) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.groups, a.bytes, a.gaps, a.gapGroups, a.storeErrors, a.reconnects, a.commit}
}

// NewRegistry returns a registry with the Go runtime and process collectors
// and the given ones.
func NewRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	return newRegistry(append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, cs...))
}

// NewWorkerRegistry returns a registry of the given collectors only, for a
// metrics file: the supervisor that serves it reports its own process.
func NewWorkerRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	return newRegistry(cs)
}

func newRegistry(cs []prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

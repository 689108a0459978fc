// Package metrics holds the Prometheus collectors that every part of the data
// path updates. They live in one registry so /metrics shows the whole path.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Registry is what /metrics serves.
var Registry = prometheus.NewRegistry()

var (
	// HitsAccepted counts hits answered 202 and queued.
	HitsAccepted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pocketlytics_hits_accepted_total",
		Help: "Hits accepted and durably queued.",
	})

	// HitsDropped counts hits that were not queued, by reason (bot,
	// headless, bad_request, unknown_site, host_not_allowed, rate_limited, ...).
	HitsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pocketlytics_hits_dropped_total",
		Help: "Hits not queued, by reason.",
	}, []string{"reason"})

	// IngestLatency observes how long an accepted hit took from the start of
	// its handler to its durable queueing: what the 202 waits for.
	IngestLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pocketlytics_ingest_seconds",
		Help:    "Time from a hit's arrival in the collect handler to its 202 (queued).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})

	// QueueDepth is the number of unacknowledged queue entries.
	QueueDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pocketlytics_queue_depth",
		Help: "Queue entries not yet stored.",
	})

	// FlushedRows counts events written to the analytics store.
	FlushedRows = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pocketlytics_flushed_rows_total",
		Help: "Events written to the analytics store.",
	})

	// BatchSize observes the number of events per store insert.
	BatchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pocketlytics_flush_batch_size",
		Help:    "Events per store insert.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 9),
	})

	// FlushLatency observes how long one store insert took.
	FlushLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pocketlytics_flush_seconds",
		Help:    "Duration of one store insert.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})

	// InsertErrors counts failed store inserts.
	InsertErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pocketlytics_insert_errors_total",
		Help: "Failed analytics store inserts.",
	})

	// SessionFallbacks counts hits whose session was resolved in process
	// memory because the shared Redis session store was slow or down.
	SessionFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pocketlytics_session_fallbacks_total",
		Help: "Hits whose session was resolved in memory because Redis was slow or down.",
	})

	// LiveClients is the number of realtime subscribers of live topics.
	LiveClients = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pocketlytics_live_clients",
		Help: "Realtime clients subscribed to a live topic.",
	})

	// LiveDropped counts live messages dropped for slow clients.
	LiveDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pocketlytics_live_dropped_total",
		Help: "Live messages dropped or coalesced because a client was slow.",
	})
)

func init() {
	Registry.MustRegister(
		HitsAccepted, HitsDropped, IngestLatency, QueueDepth, FlushedRows, BatchSize,
		FlushLatency, InsertErrors, SessionFallbacks, LiveClients, LiveDropped,
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
	)
}

// Package config is the one home of Pocketlytics' defaults. A setting's
// default is written here once; analytics.Config documents the settings and
// applies these values to its zero fields, and a package whose options have
// the same setting refers to the value here rather than repeating it.
package config

import "time"

// Collections and routes.
const (
	// SitesCollection is the name of the collection of tracked sites.
	SitesCollection = "sites"
	// SaltsCollection is the name of the hidden collection of daily salts.
	SaltsCollection = "salts"
	// SharesCollection is the name of the collection of share links.
	SharesCollection = "shares"
	// APIKeysCollection is the name of the collection of API keys.
	APIKeysCollection = "api_keys"
	// DashboardPath is where the dashboard is served in a host app; the
	// standalone binary serves it at "/".
	DashboardPath = "/analytics/"
	// MetricsPath is the Prometheus endpoint in a host app; the standalone
	// binary serves it at "/metrics".
	MetricsPath = "/api/analytics/metrics"
)

// Ingest.
const (
	RateLimit           = 20.0 // sustained hits per second per client IP
	RedisSessionTimeout = 50 * time.Millisecond
)

// Queue, flusher and store.
const (
	// QueueDir is the embedded queue's directory, inside pb_data.
	QueueDir      = "queue"
	FlushBatch    = 10000
	FlushInterval = time.Second
	ClaimIdle     = time.Minute
	MaxDeliveries = 5
	// NodeIDFile keeps the node's name among the queue's consumers, inside
	// pb_data, when NODE_ID is not set.
	NodeIDFile = "node_id"
)

// Redis and the live view.
const (
	RedisPrefix = "pl:"
	LiveChannel = "live-events"
	LiveWindow  = 5 * time.Minute
)

// SitesMirrorFile is where a collector keeps its copy of the control node's
// sites, inside pb_data, to start while Redis is unreachable.
const SitesMirrorFile = "sites-mirror.json"

// GeoIPFile is where the country database is downloaded when the binary
// embeds none, inside pb_data.
const GeoIPFile = "geoip/country.mmdb"

// Invitations.
const (
	// InvitationTTL is how long an invitation's link works.
	InvitationTTL = 7 * 24 * time.Hour
)

// Email reports and traffic alerts.
const (
	// ReportsSchedule is when due reports are looked for: hourly, so each
	// site's Monday (or 1st) is caught within an hour of starting in its
	// time zone.
	ReportsSchedule = "7 * * * *"
	// ReportRows is how many top pages and sources a report lists.
	ReportRows = 5
	// AlertsSchedule is how often live counts are compared with the alerts'
	// thresholds.
	AlertsSchedule = "* * * * *"
	// AlertCooldown is the least time between two firings of a site's alert.
	AlertCooldown = time.Hour
	// WebhookTimeout bounds one delivery of an alert's webhook.
	WebhookTimeout = 5 * time.Second
)

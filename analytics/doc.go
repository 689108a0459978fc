// Package analytics adds Pocketlytics, real-time privacy-friendly web
// analytics, to a PocketBase app: a cookie-less tracker, an ingest route,
// a durable queue, a store (SQLite, or ClickHouse at scale), the analytics
// API, a live view over PocketBase's realtime and a dashboard.
//
// Example:
//
//	app := pocketbase.New()
//
//	analytics.MustRegister(app, analytics.Config{
//		// zero values: SQLite store, local queue, dashboard at /analytics/
//	})
//
//	analytics.OnHit(app).BindFunc(func(e *analytics.HitEvent) error {
//		e.Hit.Pathname = strings.TrimSuffix(e.Hit.Pathname, "/")
//		return e.Next()
//	})
//
//	if err := app.Start(); err != nil {
//		log.Fatal(err)
//	}
//
// Sites add the tracker to their pages:
//
//	<script defer src="https://HOST/t.js" data-site="SITE_ID"></script>
//
// # What it adds to the app
//
// Routes, and nothing at the app's "/" unless Config.DashboardPath says so:
//
//	POST /api/collect                 the ingest route (CORS *, no request log)
//	GET  /t.js                        the tracker
//	GET  /api/analytics/sites/{id}/…  overview, timeseries, breakdown, live
//	GET  /api/analytics/health        health of queue, store, Redis, geo
//	GET  Config.MetricsPath           Prometheus metrics (default /api/analytics/metrics)
//	GET  Config.DashboardPath         the dashboard (default /analytics/)
//
// Collections, created by PocketBase migrations (so `migrate` and
// migratecmd treat them like the app's own): the sites (Config.SitesCollection,
// default "sites") and the daily salts of visitor ids (Config.SaltsCollection,
// default "salts", a hidden system collection). Their ids are fixed
// ("pocketlytics_sites", "pocketlytics_salts"); the dashboard and the API
// find them by id. Starting fails, naming the setting to change, when the
// app already has a collection of one of those names.
//
// Files in pb_data: queue/ (the embedded queue, Config.QueueDir),
// analytics.db (the SQLite store, without ClickHouse) and, when the binary
// embeds no country database and none is configured, geoip/country.mmdb,
// downloaded on the first start (Config.NoGeoIPDownload turns that off).
//
// Cron jobs: pocketlyticsMaintenance (every minute: retention, stream trim),
// pocketlyticsSaltRotate (daily at 00:00) and pocketlyticsSaltCheck (every
// five minutes). Backups of pb_data include the queue and the store.
//
// The hook OnHit sees each hit before it is queued. Nothing global in the
// process is changed: no GC settings, no loggers of dependencies, no flags.
package analytics

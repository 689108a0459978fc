// Package hooks binds Pocketlytics' HTTP routes to a PocketBase app: the
// ingest route (/api/collect), the tracker (/t.js), the analytics and live
// APIs, health and metrics. Each feature has its own file and its own
// RegisterXxx(app, cfg) function, called from main.go; handlers are plain
// functions of *core.RequestEvent and report errors in PocketBase's shape.
package hooks

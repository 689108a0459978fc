package hooks

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlitestore"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// openStore opens a real SQLite analytics store in a temp dir.
func openStore(t testing.TB) *sqlitestore.Store {
	t.Helper()
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "analytics.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// authTokens returns a superuser's and a regular user's token from
// PocketBase's test data (each test app is a copy of it, so they stay valid).
func authTokens(t *testing.T) (superuser, user string) {
	t.Helper()
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	for _, c := range []struct {
		collection string
		dst        *string
	}{{core.CollectionNameSuperusers, &superuser}, {"users", &user}} {
		rec, err := app.FindAuthRecordByEmail(c.collection, "test@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if *c.dst, err = rec.NewAuthToken(); err != nil {
			t.Fatal(err)
		}
	}
	return superuser, user
}

func TestOps(t *testing.T) {
	client := testutil.Redis(t)
	stream := testutil.RedisPrefix(t, "pl:test:ops:")
	q, err := redisq.New(client, redisq.Options{Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	ev := event.Event{ID: "e1", Time: time.Now(), SiteID: "s", Type: event.Pageview}
	for range 2 { // two group commits: two entries
		if err := q.Enqueue(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}

	store := openStore(t)
	closed := openStore(t)
	closed.Close() // a store that cannot be reached

	superuser, user := authTokens(t)
	flushed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	factory := func(cfg OpsConfig) func(t testing.TB) *tests.TestApp {
		return func(t testing.TB) *tests.TestApp {
			app, err := tests.NewTestApp()
			if err != nil {
				t.Fatal(err)
			}
			if err := RegisterOps(app, cfg); err != nil {
				t.Fatal(err)
			}
			return app
		}
	}
	healthy := factory(OpsConfig{
		Mode: ModeRedis, Queue: q, Redis: q, Store: store,
		LastFlush: func() time.Time { return flushed }, MetricsToken: "s3cret-token",
	})

	scenarios := []tests.ApiScenario{
		{
			Name: "health, everything up", Method: http.MethodGet, URL: "/api/analytics/health",
			TestAppFactory: healthy,
			ExpectedStatus: http.StatusOK,
			ExpectedContent: []string{
				`"status":"ok"`, `"problems":[]`, `"mode":"redis"`, `"store":"sqlite"`,
				`"storeReachable":true`, `"redisReachable":true`, `"queueLength":2`, `"pending":0`,
				`"deadLetters":0`, `"spoolHealthy":null`, `"lastFlush":"2026-01-02T03:04:05Z"`,
			},
			NotExpectedContent: []string{`"oldestPendingMs":0,`},
		},
		{
			Name: "health, store down, never flushed", Method: http.MethodGet, URL: "/api/analytics/health",
			TestAppFactory: factory(OpsConfig{
				Queue: q, Store: closed,
				LastFlush: func() time.Time { return time.Time{} },
			}),
			ExpectedStatus: http.StatusOK,
			ExpectedContent: []string{
				`"status":"degraded"`, `"problems":["store"]`, `"mode":"embedded"`,
				`"storeReachable":false`, `"redisReachable":null`, `"lastFlush":null`,
			},
		},
		{
			Name: "metrics without credentials", Method: http.MethodGet, URL: "/metrics",
			TestAppFactory:  healthy,
			ExpectedStatus:  http.StatusUnauthorized,
			ExpectedContent: []string{`"status":401`, `"message":`},
		},
		{
			Name: "metrics with a wrong token", Method: http.MethodGet, URL: "/metrics",
			Headers:         map[string]string{"Authorization": "Bearer s3cret-tokem"},
			TestAppFactory:  healthy,
			ExpectedStatus:  http.StatusUnauthorized,
			ExpectedContent: []string{`"status":401`},
		},
		{
			Name: "metrics with a token when none is configured", Method: http.MethodGet, URL: "/metrics",
			Headers:         map[string]string{"Authorization": "Bearer "},
			TestAppFactory:  factory(OpsConfig{Queue: q, Store: store}),
			ExpectedStatus:  http.StatusUnauthorized,
			ExpectedContent: []string{`"status":401`},
		},
		{
			Name: "metrics as a regular user", Method: http.MethodGet, URL: "/metrics",
			Headers:         map[string]string{"Authorization": user},
			TestAppFactory:  healthy,
			ExpectedStatus:  http.StatusForbidden,
			ExpectedContent: []string{`"status":403`},
		},
		{
			Name: "metrics with the token", Method: http.MethodGet, URL: "/metrics",
			Headers:         map[string]string{"Authorization": "Bearer s3cret-token"},
			TestAppFactory:  healthy,
			ExpectedStatus:  http.StatusOK,
			ExpectedContent: []string{"# TYPE pocketlytics_queue_depth gauge", "pocketlytics_queue_depth 2", "go_goroutines"},
		},
		{
			Name: "metrics as a superuser", Method: http.MethodGet, URL: "/metrics",
			Headers:         map[string]string{"Authorization": superuser},
			TestAppFactory:  healthy,
			ExpectedStatus:  http.StatusOK,
			ExpectedContent: []string{"pocketlytics_hits_accepted_total", "pocketlytics_ingest_seconds_bucket"},
		},
	}
	for _, s := range scenarios {
		s.Test(t)
	}
}

func TestRegisterOpsNeedsQueueAndStore(t *testing.T) {
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	if err := RegisterOps(app, OpsConfig{}); err == nil || !strings.Contains(err.Error(), "Queue") {
		t.Fatalf("RegisterOps without parts = %v, want an error", err)
	}
}

package hooks

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tests"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
	"github.com/pocketlytics/pocketlytics/internal/queue/redisq"
	"github.com/pocketlytics/pocketlytics/internal/queue/spool"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestOpsHealthWhileSpooling points the Redis queue at a proxy that is cut,
// so hits land in the spool, and checks that health says so.
func TestOpsHealthWhileSpooling(t *testing.T) {
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, opts.Addr)
	proxy.Cut()

	client := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	rq, err := redisq.New(client, redisq.Options{Stream: testutil.RedisPrefix(t, "pl:test:ops:")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rq.Close() })
	lq, err := localq.Open(t.TempDir(), localq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lq.Close() })
	sp := spool.New(rq, lq, spool.Options{Timeout: 100 * time.Millisecond, RetryInterval: time.Hour})
	t.Cleanup(func() { sp.Close() })

	ev := event.Event{ID: "e1", Time: time.Now(), SiteID: "s", Type: event.Pageview}
	for range 3 {
		if err := sp.Enqueue(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}

	store := openStore(t)
	s := tests.ApiScenario{
		Name: "health while Redis is down", Method: http.MethodGet, URL: "/api/analytics/health",
		TestAppFactory: func(t testing.TB) *tests.TestApp {
			app, err := tests.NewTestApp()
			if err != nil {
				t.Fatal(err)
			}
			cfg := OpsConfig{Mode: ModeRedis, Queue: rq, Redis: rq, Spool: sp, Store: store,
				Timeout: 300 * time.Millisecond}
			if err := RegisterOps(app, cfg); err != nil {
				t.Fatal(err)
			}
			return app
		},
		ExpectedStatus: http.StatusOK,
		ExpectedContent: []string{
			`"status":"degraded"`, `"problems":["queue","redis","spooling"]`,
			`"redisReachable":false`, `"spooled":3`, `"spoolHealthy":false`, `"storeReachable":true`,
		},
	}
	s.Test(t)
}

package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/session"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// BenchmarkRedisTouchAt5000 is the latency of a hit's session lookup at the
// ingest target's rate (5,000 hits a second), each hit a new visitor's
// pageview, so that every one makes the script call.
func BenchmarkRedisTouchAt5000(b *testing.B) {
	r := session.NewRedis(testutil.Redis(b), testutil.RedisPrefix(b, "pl_test_")+":", session.RedisOptions{})
	b.Cleanup(func() { r.Close() })
	ctx := context.Background()
	now := time.Now()

	testutil.AtRate(b, 5000, func(i int) {
		l := session.Lookup{Site: "site1", Visitor: uint64(i) + 1, Time: now, Pageview: true, Create: true}
		if _, ok := r.Touch(ctx, l); !ok {
			b.Error("no session")
		}
	})
	if n := r.Fallbacks(); n > 0 {
		b.ReportMetric(float64(n)/float64(b.N), "fallbacks/op")
	}
}

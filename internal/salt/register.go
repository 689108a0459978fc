package salt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pocketbase/pocketbase/core"
)

// Cron job ids, so that other code (and tests) can find or replace them.
const (
	CronRotate = "pocketlyticsSaltRotate"
	CronCheck  = "pocketlyticsSaltCheck"
)

// Register returns a Ring over store (nil: the app's `salts` collection)
// wired into app: salts are loaded when the app starts serving (serving
// fails if they cannot be), rotated by a cron job at 00:00 UTC, and checked
// every five minutes in case a rotation failed or the clock jumped.
//
// The cron schedule follows the app's cron timezone, UTC unless changed.
func Register(app core.App, store Store) (*Ring, error) {
	if store == nil {
		store = NewCollectionStore(app)
	}
	r := NewRing(store)
	r.Logger = app.Logger()

	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Rotate(ctx, time.Now()); err != nil {
			// Salts loaded and only pruning failed: serve, prune later.
			if r.cur.Load() == nil {
				return fmt.Errorf("load daily salts: %w", err)
			}
			app.Logger().Warn("salt: rotation incomplete", slog.String("error", err.Error()))
		}
		return e.Next()
	})

	rotate := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Rotate(ctx, time.Now()); err != nil {
			app.Logger().Error("salt: rotation failed", slog.String("error", err.Error()))
		}
	}
	if err := app.Cron().Add(CronRotate, "0 0 * * *", rotate); err != nil {
		return nil, err
	}
	if err := app.Cron().Add(CronCheck, "*/5 * * * *", rotate); err != nil {
		return nil, err
	}
	return r, nil
}

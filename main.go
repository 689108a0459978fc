// Command pocketlytics is real-time, privacy-friendly web analytics shipped
// as a PocketBase application: PocketBase with the analytics plugin
// (package analytics) serving its dashboard at /. It keeps every PocketBase
// command (serve, superuser, migrate) and adds `demo`.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/analytics"
	"github.com/pocketlytics/pocketlytics/internal/demo"
)

func main() {
	app := pocketbase.NewWithConfig(pocketbase.Config{HideStartBanner: true})

	cfg, err := analytics.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	// The whole server is the analytics app: the dashboard is its home page.
	cfg.DashboardPath, cfg.MetricsPath = "/", "/metrics"
	analytics.MustRegister(app, cfg)
	app.RootCmd.AddCommand(demo.NewCommand(app))

	// The process is ours (a plugin leaves these alone): go-redis' own
	// lines, one per failed dial, go to the debug log, since each part that
	// uses Redis logs an outage once.
	redis.SetLogger(redisLogger{app})
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{Func: banner(app), Priority: 1000})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// banner prints where things are once the server listens, naming the
// analytics dashboard and PocketBase's admin UI apart (PocketBase's own
// banner calls the admin UI "Dashboard").
func banner(app *pocketbase.PocketBase) func(e *core.ServeEvent) error {
	return func(e *core.ServeEvent) error {
		if err := e.Next(); err != nil {
			return err
		}
		scheme := "http"
		if serve, _, err := app.RootCmd.Find([]string{"serve"}); err == nil {
			if f := serve.Flags().Lookup("https"); f != nil && f.Value.String() != "" {
				scheme = "https"
			}
		}
		host := e.Server.Addr
		if h, port, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
			host = net.JoinHostPort("127.0.0.1", port)
		}
		base := scheme + "://" + host
		fmt.Printf("Pocketlytics is running at %s\n", base)
		fmt.Println(strings.Join([]string{
			"├─ Analytics dashboard:  " + base + "/",
			"├─ Admin UI (PocketBase): " + base + "/_/",
			"└─ Tracker:              " + base + "/t.js",
		}, "\n"))
		return nil
	}
}

// redisLogger sends go-redis' messages to the app's debug log.
type redisLogger struct{ app core.App }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.app.Logger().Debug("redis: " + fmt.Sprintf(format, v...))
}

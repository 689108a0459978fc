// Command pocketlytics is real-time, privacy-friendly web analytics shipped
// as a PocketBase application: PocketBase with the analytics plugin
// (package analytics) serving its dashboard at /. It keeps every PocketBase
// command (serve, superuser, migrate) and adds `demo`, and `collect`, which
// serves as a collector node (see docs/SCALING.md).
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"strings"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/cmd"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

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
	// The plugin is wired before the command line is parsed, so the
	// command that makes a collector is recognised here.
	cfg.Collector = len(os.Args) > 1 && os.Args[1] == "collect"
	// A collector's missing settings fail the command when it runs, so
	// `collect --help` still prints the help.
	registerErr := analytics.Register(app, cfg)
	if registerErr != nil && !cfg.Collector {
		log.Fatal(registerErr)
	}
	app.RootCmd.AddCommand(demo.NewCommand(app), collectCommand(app, registerErr))

	// The process is ours (a plugin leaves these alone): go-redis' own
	// lines, one per failed dial, go to the debug log, since each part that
	// uses Redis logs an outage once.
	redis.SetLogger(redisLogger{app})
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{Func: banner(app, cfg.Collector), Priority: 1000})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// collectCommand is `serve` for a collector node: the same flags, a
// different role (analytics.Config.Collector). registerErr is the plugin's
// error with the collector's settings, returned before the server starts.
func collectCommand(app *pocketbase.PocketBase, registerErr error) *cobra.Command {
	c := cmd.NewServeCommand(app, false)
	c.Use = "collect [domain(s)]"
	c.Short = "Starts a collector node: takes hits and flushes them, with the sites of the control node (REDIS_URL and CLICKHOUSE_URL required)"
	c.PreRunE = func(*cobra.Command, []string) error { return registerErr }
	return c
}

// banner prints where things are once the server listens, naming the
// analytics dashboard and PocketBase's admin UI apart (PocketBase's own
// banner calls the admin UI "Dashboard").
func banner(app *pocketbase.PocketBase, collector bool) func(e *core.ServeEvent) error {
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
		if collector {
			fmt.Printf("Pocketlytics collector is running at %s\n", base)
			fmt.Println("└─ Tracker and ingest:   " + base + "/t.js, " + base + "/api/collect")
			return nil
		}
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

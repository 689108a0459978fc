// Command pocketlytics is real-time, privacy-friendly web analytics shipped
// as a PocketBase application. It keeps every PocketBase command (serve,
// superuser, migrate) and adds `demo`.
//
// The data path, in the order a hit takes it:
//
//	hooks (POST /api/collect) → internal/enrich → internal/queue → internal/flush
//	→ internal/store, and realtime/ for the live view.
package main

import (
	"log"

	"github.com/pocketbase/pocketbase"

	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/demo"
	"github.com/pocketlytics/pocketlytics/internal/gcpolicy"
	_ "github.com/pocketlytics/pocketlytics/migrations"
)

func main() {
	stopGC := gcpolicy.Start(gcpolicy.Options{})
	defer stopGC()

	app := pocketbase.New()

	cfg, err := config.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	if err := register(app, cfg); err != nil {
		log.Fatal(err)
	}
	app.RootCmd.AddCommand(demo.NewCommand(app))

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// Command existing-app is a PocketBase app of its own (a notes collection,
// a route, a page in pb_public and a hook) with Pocketlytics added in the
// few lines marked "analytics". Its test (main_test.go) checks that both
// keep working side by side.
package main

import (
	"embed"
	"io/fs"
	"log"
	"net/http"
	"strings"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/analytics"
	_ "github.com/pocketlytics/pocketlytics/examples/existing-app/migrations"
)

//go:embed pb_public
var public embed.FS

func main() {
	app := pocketbase.New()

	// The app's own hook and route.
	app.OnRecordCreate("notes").BindFunc(func(e *core.RecordEvent) error {
		e.Record.Set("title", strings.TrimSpace(e.Record.GetString("title")))
		return e.Next()
	})
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET("/api/hello", func(e *core.RequestEvent) error {
			return e.JSON(http.StatusOK, map[string]string{"message": "Hello from the host app."})
		})
		site, _ := fs.Sub(public, "pb_public")
		se.Router.GET("/{path...}", apis.Static(site, false))
		return se.Next()
	})

	// analytics: the plugin, with the dashboard at /analytics/.
	analytics.MustRegister(app, analytics.Config{})
	// analytics: the app's own rule, no hits from its admin pages.
	analytics.OnHit(app).BindFunc(func(e *analytics.HitEvent) error {
		if strings.HasPrefix(e.Hit.Pathname, "/admin/") {
			return nil // dropped
		}
		return e.Next()
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// Package migrations holds the host app's own migrations.
package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// notes: anyone may read and create (a demo, not a policy).
func init() {
	m.Register(func(app core.App) error {
		c := core.NewBaseCollection("notes")
		c.ListRule = types.Pointer("")
		c.ViewRule = types.Pointer("")
		c.CreateRule = types.Pointer("")
		c.Fields.Add(&core.TextField{Name: "title", Required: true, Max: 200})
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId("notes")
		if err != nil {
			return err
		}
		return app.Delete(c)
	})
}

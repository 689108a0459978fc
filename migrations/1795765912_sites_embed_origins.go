package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// embed_origins lists the origins whose pages may show the site's share
// links in an <iframe> (the share page's frame-ancestors, see
// hooks.RegisterDashboard); hooks.RegisterSites keeps them well formed.
func init() {
	m.Register(func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(SitesCollectionId)
		if err != nil {
			return err
		}
		c.Fields.Add(&core.JSONField{
			Name:    "embed_origins",
			MaxSize: 4 << 10,
			Help:    `Origins that may embed the site's share links, e.g. ["https://status.example.com"].`,
		})
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(SitesCollectionId)
		if err != nil {
			return err
		}
		c.Fields.RemoveByName("embed_origins")
		return app.Save(c)
	})
}

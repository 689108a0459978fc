// Package migrations holds Pocketlytics' PocketBase migrations. Importing it
// (blank import in main.go) registers them; `pocketlytics serve` applies the
// pending ones at start, and `pocketlytics migrate down` reverts them.
package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Access to a site. The value rules of the fields (host names, time zone,
// owner on create) are enforced by hooks.RegisterSites; these rules only
// decide who may do what.
const (
	sitesReadRule = `@request.auth.id != "" && (owner = @request.auth.id || members.id ?= @request.auth.id)`

	// Any signed-in user may create a site for themselves; a create hook
	// also sets owner to the creator, so omitting it is fine.
	sitesCreateRule = `@request.auth.id != "" && @request.auth.collectionName = "users" && ` +
		`(@request.body.owner:isset = false || @request.body.owner = @request.auth.id)`

	// Only the owner may change or delete a site. The owner may hand the
	// site over to someone else (owner is then rewritten in the body).
	sitesUpdateRule = `@request.auth.id != "" && owner = @request.auth.id`
	sitesDeleteRule = `@request.auth.id != "" && owner = @request.auth.id`
)

func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}

		name := names(app).Sites
		if err := ensureFree(app, name, SitesCollectionId, "SitesCollection (SITES_COLLECTION)"); err != nil {
			return err
		}
		sites := core.NewBaseCollection(name, SitesCollectionId)
		sites.ListRule = types.Pointer(sitesReadRule)
		sites.ViewRule = types.Pointer(sitesReadRule)
		sites.CreateRule = types.Pointer(sitesCreateRule)
		sites.UpdateRule = types.Pointer(sitesUpdateRule)
		sites.DeleteRule = types.Pointer(sitesDeleteRule)

		sites.Fields.Add(
			&core.TextField{
				Name:     "name",
				Required: true,
				Max:      200,
			},
			&core.JSONField{
				Name:    "domains",
				MaxSize: 16 << 10,
				Help:    "Host names allowed to send hits, e.g. [\"example.com\"].",
			},
			&core.BoolField{
				Name: "allow_subdomains",
			},
			&core.RelationField{
				Name:          "owner",
				CollectionId:  users.Id,
				Required:      true,
				CascadeDelete: true,
				MaxSelect:     1,
			},
			&core.RelationField{
				Name:         "members",
				CollectionId: users.Id,
				MaxSelect:    100,
			},
			&core.BoolField{
				Name: "public",
			},
			&core.TextField{
				Name: "timezone",
				Max:  64,
				Help: "IANA time zone of the dashboard's days, e.g. Europe/Berlin. Default UTC.",
			},
			&core.AutodateField{
				Name:     "created",
				OnCreate: true,
			},
			&core.AutodateField{
				Name:     "updated",
				OnCreate: true,
				OnUpdate: true,
			},
		)

		sites.AddIndex("idx_sites_owner", false, "owner", "")

		return app.Save(sites)
	}, func(app core.App) error {
		sites, err := app.FindCollectionByNameOrId(SitesCollectionId)
		if err != nil {
			return err
		}
		return app.Delete(sites)
	})
}

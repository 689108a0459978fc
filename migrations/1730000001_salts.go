package migrations

import (
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// The `salts` collection holds the daily salts of visitor ids (see
// internal/salt). It is a system collection with nil rules, so only
// superusers can list or view it, and its value field is hidden from API
// responses. A salt is deleted once it is older than yesterday.
func init() {
	m.Register(func(app core.App) error {
		name := names(app).Salts
		if err := ensureFree(app, name, SaltsCollectionId, "SaltsCollection (SALTS_COLLECTION)"); err != nil {
			return err
		}
		c := core.NewBaseCollection(name, SaltsCollectionId)
		c.System = true
		c.Fields.Add(
			&core.TextField{
				Name:     "day",
				System:   true,
				Required: true,
				Pattern:  `^\d{4}-\d{2}-\d{2}$`,
			},
			&core.TextField{
				Name:     "value",
				System:   true,
				Required: true,
				Hidden:   true,
				Pattern:  `^[0-9a-f]{64}$`,
			},
			&core.AutodateField{
				Name:     "created",
				System:   true,
				OnCreate: true,
			},
		)
		c.AddIndex("idx_salts_day", true, "day", "")
		return app.Save(c)
	}, func(app core.App) error {
		// System collections cannot be deleted through app.Delete; like
		// PocketBase's own init migration, drop the table directly.
		c, err := app.FindCollectionByNameOrId(SaltsCollectionId)
		if err != nil {
			return nil // already gone
		}
		if _, err := app.DB().DropTable(c.Name).Execute(); err != nil {
			return err
		}
		if _, err := app.DB().Delete("_collections", dbx.HashExp{"id": c.Id}).Execute(); err != nil {
			return err
		}
		return app.ReloadCachedCollections()
	})
}

package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// SegmentsCollectionId is the segments collection's id (see
// SitesCollectionId).
const SegmentsCollectionId = "pocketlytics_segments"

// A segment is a saved set of dashboard filters. Its owner reads and edits
// it; once shared, the site's readers see it too and the site's owner and
// admins may remove it. The filters are checked by hooks.RegisterSegments.
var (
	segmentsRead   = objReaders + ` && (owner = @request.auth.id || shared = true)`
	segmentsCreate = siteRole("@request.body.site.", "owner", "admins", "members") + ` && @request.body.owner = @request.auth.id`
	segmentsUpdate = objReaders + ` && owner = @request.auth.id && ` +
		`@request.body.site:changed = false && @request.body.owner:changed = false`
	segmentsDelete = `@request.auth.id != "" && (owner = @request.auth.id || (shared = true && ` + objAdmins + `))`
)

func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		if err := ensureFree(app, "segments", SegmentsCollectionId, "(no setting: rename the app's collection)"); err != nil {
			return err
		}
		c := core.NewBaseCollection("segments", SegmentsCollectionId)
		c.ListRule = types.Pointer(segmentsRead)
		c.ViewRule = types.Pointer(segmentsRead)
		c.CreateRule = types.Pointer(segmentsCreate)
		c.UpdateRule = types.Pointer(segmentsUpdate)
		c.DeleteRule = types.Pointer(segmentsDelete)
		c.Fields.Add(
			&core.RelationField{Name: "site", CollectionId: SitesCollectionId, Required: true, CascadeDelete: true, MaxSelect: 1},
			&core.TextField{Name: "name", Required: true, Max: 200},
			&core.JSONField{Name: "filters", Required: true, MaxSize: 64 << 10,
				Help: `The analytics API's filters in their JSON form, e.g. [["country","is",["DE","FR"]]].`},
			&core.RelationField{Name: "owner", CollectionId: users.Id, Required: true, CascadeDelete: true, MaxSelect: 1},
			&core.BoolField{Name: "shared", Help: "Shown to everyone who reads the site."},
			&core.AutodateField{Name: "created", OnCreate: true},
			&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
		)
		c.AddIndex("idx_segments_site", false, "site", "")
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(SegmentsCollectionId)
		if err != nil {
			return nil
		}
		return app.Delete(c)
	})
}

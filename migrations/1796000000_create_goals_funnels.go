package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// The collections' ids (see SitesCollectionId).
const (
	GoalsCollectionId   = "pocketlytics_goals"
	FunnelsCollectionId = "pocketlytics_funnels"
)

// Goals and funnels belong to a site: its members (and anyone, for a public
// site) read them, its owner writes them. The value rules (an event or a
// page, the steps) are enforced by hooks.RegisterConversions.
const (
	convReadRule  = `@request.auth.id != "" && (site.owner = @request.auth.id || site.members.id ?= @request.auth.id) || site.public = true`
	convWriteRule = `@request.auth.id != "" && site.owner = @request.auth.id && ` +
		`(@request.body.site:isset = false || @request.body.site.owner = @request.auth.id)`
	convCreateRule = `@request.auth.id != "" && @request.body.site.owner = @request.auth.id`
	convDeleteRule = `@request.auth.id != "" && site.owner = @request.auth.id`
)

func init() {
	m.Register(func(app core.App) error {
		for _, c := range []struct {
			name, id string
			fields   []core.Field
		}{
			{"goals", GoalsCollectionId, []core.Field{
				&core.TextField{Name: "event", Max: 2000, Help: "Custom event name the goal counts; or set page."},
				&core.JSONField{Name: "props", MaxSize: 16 << 10, Help: "Property values the event must carry, e.g. {\"plan\": \"pro\"}."},
				&core.TextField{Name: "page", Max: 2000, Help: "Path pattern the goal counts, * matches any run of characters; or set event."},
			}},
			{"funnels", FunnelsCollectionId, []core.Field{
				&core.JSONField{Name: "steps", Required: true, MaxSize: 64 << 10,
					Help: "2 to 8 ordered steps, each {\"page\": \"/pricing\"} or {\"event\": \"signup\"}."},
			}},
		} {
			if err := ensureFree(app, c.name, c.id, "(no setting: rename the app's collection)"); err != nil {
				return err
			}
			col := core.NewBaseCollection(c.name, c.id)
			col.ListRule = types.Pointer(convReadRule)
			col.ViewRule = types.Pointer(convReadRule)
			col.CreateRule = types.Pointer(convCreateRule)
			col.UpdateRule = types.Pointer(convWriteRule)
			col.DeleteRule = types.Pointer(convDeleteRule)
			col.Fields.Add(
				&core.RelationField{Name: "site", CollectionId: SitesCollectionId, Required: true, CascadeDelete: true, MaxSelect: 1},
				&core.TextField{Name: "name", Required: true, Max: 200},
			)
			col.Fields.Add(c.fields...)
			col.Fields.Add(
				&core.AutodateField{Name: "created", OnCreate: true},
				&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
			)
			col.AddIndex("idx_"+c.name+"_site_name", true, "site, name", "")
			if err := app.Save(col); err != nil {
				return err
			}
		}
		return nil
	}, func(app core.App) error {
		for _, id := range []string{FunnelsCollectionId, GoalsCollectionId} {
			c, err := app.FindCollectionByNameOrId(id)
			if err != nil {
				return err
			}
			if err := app.Delete(c); err != nil {
				return err
			}
		}
		return nil
	})
}

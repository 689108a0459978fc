package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// The collections of email reports and traffic alerts (see
// SitesCollectionId for why their ids are fixed).
const (
	ReportsCollectionId = "pocketlytics_reports"
	AlertsCollectionId  = "pocketlytics_alerts"
)

// Report frequencies.
const (
	Weekly  = "weekly"
	Monthly = "monthly"
)

var (
	bodyReaders = siteRole("@request.body.site.", "owner", "admins", "members")

	// A user subscribes themselves (hooks.RegisterReports sets user to the
	// signed-in user) to a site they read, and changes only the frequency;
	// the period sent and the unsubscribe token are the hooks' (hidden
	// fields: PocketBase drops them from a non-superuser's request).
	reportsRead   = `user = @request.auth.id && ` + objReaders
	reportsCreate = `@request.auth.collectionName = "users" && ` +
		`(@request.body.user:isset = false || @request.body.user = @request.auth.id) && ` + bodyReaders
	reportsUpdate = reportsRead + ` && @request.body.user:isset = false && @request.body.site:isset = false && ` +
		`@request.body.lastSent:isset = false`
	reportsDelete = `user = @request.auth.id`

	// The owner and admins manage a site's alert; when it last fired is
	// the hooks'.
	alertsCreate = bodyAdmins + ` && @request.body.lastFired:isset = false`
	alertsUpdate = objAdmins + ` && @request.body.site:isset = false && @request.body.lastFired:isset = false`
)

// `reports` holds each user's email report subscriptions, one per site
// (weekly or monthly); `alerts` a site's traffic alert, one per site (a
// live visitor threshold, by email to the owner and admins and/or a
// webhook). hooks.RegisterReports and hooks.RegisterAlerts send them.
func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		if err := ensureFree(app, "reports", ReportsCollectionId, "(no setting: rename the app's collection)"); err != nil {
			return err
		}
		if err := ensureFree(app, "alerts", AlertsCollectionId, "(no setting: rename the app's collection)"); err != nil {
			return err
		}

		reports := core.NewBaseCollection("reports", ReportsCollectionId)
		reports.ListRule = types.Pointer(reportsRead)
		reports.ViewRule = types.Pointer(reportsRead)
		reports.CreateRule = types.Pointer(reportsCreate)
		reports.UpdateRule = types.Pointer(reportsUpdate)
		reports.DeleteRule = types.Pointer(reportsDelete)
		reports.Fields.Add(
			&core.RelationField{Name: "user", CollectionId: users.Id, Required: true, CascadeDelete: true, MaxSelect: 1},
			&core.RelationField{Name: "site", CollectionId: SitesCollectionId, Required: true, CascadeDelete: true, MaxSelect: 1},
			&core.SelectField{Name: "frequency", Required: true, MaxSelect: 1, Values: []string{Weekly, Monthly}},
			&core.DateField{Name: "lastSent"},
			&core.TextField{Name: "period", Hidden: true, Max: 40},
			&core.TextField{Name: "token", Hidden: true, Pattern: `^[0-9A-Za-z]*$`, Max: 64},
			&core.AutodateField{Name: "created", OnCreate: true},
			&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
		)
		reports.AddIndex("idx_reports_user_site", true, "user, site", "")
		reports.AddIndex("idx_reports_token", true, "token", "token != ''")
		if err := app.Save(reports); err != nil {
			return err
		}

		alerts := core.NewBaseCollection("alerts", AlertsCollectionId)
		alerts.ListRule = types.Pointer(objAdmins)
		alerts.ViewRule = types.Pointer(objAdmins)
		alerts.CreateRule = types.Pointer(alertsCreate)
		alerts.UpdateRule = types.Pointer(alertsUpdate)
		alerts.DeleteRule = types.Pointer(objAdmins)
		alerts.Fields.Add(
			&core.RelationField{Name: "site", CollectionId: SitesCollectionId, Required: true, CascadeDelete: true, MaxSelect: 1},
			&core.NumberField{Name: "threshold", Required: true, OnlyInt: true, Min: types.Pointer(1.0),
				Help: "Live visitors: the alert fires when the live count reaches this from below."},
			&core.BoolField{Name: "email", Help: "Mail the site's owner and admins."},
			&core.URLField{Name: "webhook", Help: "An http(s) URL that receives a JSON POST."},
			&core.DateField{Name: "lastFired"},
			&core.AutodateField{Name: "created", OnCreate: true},
			&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
		)
		alerts.AddIndex("idx_alerts_site", true, "site", "")
		return app.Save(alerts)
	}, func(app core.App) error {
		for _, id := range []string{AlertsCollectionId, ReportsCollectionId} {
			if c, err := app.FindCollectionByNameOrId(id); err == nil {
				if err := app.Delete(c); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

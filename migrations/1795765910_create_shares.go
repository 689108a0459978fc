package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// siteManagers admits those who manage a site's shares: its owner
// (superusers pass every rule).
const siteManagers = `@request.auth.id != "" && site.owner = @request.auth.id`

// A share's token is set by hooks.RegisterShares on create and never
// changes; its site neither (a new share is a new link).
const sharesUpdateRule = siteManagers + ` && @request.body.site:isset = false && @request.body.token:isset = false`

// The `shares` collection holds share links: anyone with a link reads the
// statistics of its one site (access.ShareOpens), read-only, without an
// account. Deleting a share revokes it at once.
func init() {
	m.Register(func(app core.App) error {
		name := names(app).Shares
		if err := ensureFree(app, name, SharesCollectionId, "SharesCollection (SHARES_COLLECTION)"); err != nil {
			return err
		}
		c := core.NewBaseCollection(name, SharesCollectionId)
		c.ListRule = types.Pointer(siteManagers)
		c.ViewRule = types.Pointer(siteManagers)
		c.CreateRule = types.Pointer(siteManagers)
		c.UpdateRule = types.Pointer(sharesUpdateRule)
		c.DeleteRule = types.Pointer(siteManagers)
		c.Fields.Add(
			&core.RelationField{
				Name:          "site",
				CollectionId:  SitesCollectionId,
				Required:      true,
				CascadeDelete: true,
				MaxSelect:     1,
			},
			&core.TextField{
				Name:    "token",
				Max:     64,
				Pattern: `^[A-Za-z0-9]*$`,
				Help:    "Set by the server on create; the link is {dashboard}/share/{token}.",
			},
			&core.TextField{
				Name: "label",
				Max:  200,
				Help: "What the link is for, e.g. the client's name.",
			},
			&core.PasswordField{
				// Not Hidden: owners set it through the API; a password
				// field never shows its value anyway.
				Name: "password",
				Max:  71,
				Help: "Optional: viewers enter it before they see anything.",
			},
			&core.DateField{
				Name: "expires",
				Help: "Optional: the link stops working at this time.",
			},
			&core.BoolField{
				Name: "live",
				Help: "Also show the live view (globe, arrivals).",
			},
			&core.AutodateField{Name: "created", OnCreate: true},
			&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
		)
		c.AddIndex("idx_shares_token", true, "token", "")
		c.AddIndex("idx_shares_site", false, "site", "")
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(SharesCollectionId)
		if err != nil {
			return nil
		}
		return app.Delete(c)
	})
}

package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// InvitationsCollectionId is the invitations collection's id (see
// SitesCollectionId).
const InvitationsCollectionId = "pocketlytics_invitations"

// The owner invites admins and members, an admin invites members. The
// token, its expiry and the inviter are set by hooks.RegisterInvitations;
// an invitation is never edited (revoke it and invite again).
var invitationsCreateRule = `@request.auth.collectionName = "users" && (` + siteRole("@request.body.site.", "owner") +
	` || (` + siteRole("@request.body.site.", "admins") + ` && @request.body.role = "` + RoleMember + `"))`

// The `invitations` collection holds the pending invitations to a site: a
// mail with a link goes to the address; whoever signs in with that address
// and follows the link joins with the role, which consumes the invitation.
// Only a SHA-256 hash of the link's token is stored.
func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		if err := ensureFree(app, "invitations", InvitationsCollectionId, "(no setting: rename the app's collection)"); err != nil {
			return err
		}
		c := core.NewBaseCollection("invitations", InvitationsCollectionId)
		c.ListRule = types.Pointer(objAdmins)
		c.ViewRule = types.Pointer(objAdmins)
		c.CreateRule = types.Pointer(invitationsCreateRule)
		c.DeleteRule = types.Pointer(objAdmins)
		c.Fields.Add(
			&core.RelationField{Name: "site", CollectionId: SitesCollectionId, Required: true, CascadeDelete: true, MaxSelect: 1},
			&core.EmailField{Name: "email", Required: true},
			&core.SelectField{Name: "role", Required: true, MaxSelect: 1, Values: []string{RoleAdmin, RoleMember}},
			&core.TextField{Name: "tokenHash", Hidden: true, Pattern: `^[0-9a-f]{64}$`},
			&core.DateField{Name: "expires"},
			&core.RelationField{Name: "invitedBy", CollectionId: users.Id, MaxSelect: 1},
			&core.AutodateField{Name: "created", OnCreate: true},
			&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
		)
		c.AddIndex("idx_invitations_token", true, "tokenHash", "")
		c.AddIndex("idx_invitations_site_email", true, "site, email COLLATE NOCASE", "")
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(InvitationsCollectionId)
		if err != nil {
			return nil
		}
		return app.Delete(c)
	})
}

package hooks

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/mailer"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// InvitePath is where the dashboard's invitation page reads an invitation
// (GET InvitePath/{token}) and accepts it (POST InvitePath/{token}/accept).
const InvitePath = "/api/analytics/invitations"

// RegisterInvitations binds the hooks of the invitations collection
// (created by the migrations package) and the routes of the invitation
// page; dashboard is where the dashboard is served ("/" or "/analytics/").
//
//   - a new invitation gets a random token (only its hash is stored), an
//     expiry and its inviter; the mail with the link
//     {appURL}{dashboard}invite/{token} goes out through the app's mailer
//     (SMTP in the admin UI's settings), and an invitation whose mail
//     could not be sent is not kept;
//   - GET InvitePath/{token} tells the page the site's name, the role and
//     the address invited;
//   - POST InvitePath/{token}/accept, signed in as a user with the invited
//     address, gives them the role on the site and deletes the invitation;
//   - GET /api/analytics/sites/{siteId}/team lists the site's owner,
//     admins and members with their addresses, for its owner and admins
//     (the users collection hides other users' addresses).
func RegisterInvitations(app core.App, dashboard string) error {
	app.OnRecordCreateRequest(access.InvitationsCollection).BindFunc(func(e *core.RecordRequestEvent) error {
		e.Record.Set("invitedBy", "")
		if e.Auth != nil && !e.HasSuperuserAuth() {
			e.Record.Set("invitedBy", e.Auth.Id)
		}
		return e.Next()
	})

	app.OnRecordCreate(access.InvitationsCollection).BindFunc(func(e *core.RecordEvent) error {
		inv := e.Record
		inv.Set("email", strings.ToLower(strings.TrimSpace(inv.GetString("email"))))
		site, err := e.App.FindRecordById(sitecache.Collection, inv.GetString("site"))
		if err != nil {
			return validation.Errors{"site": validation.NewError("validation_invalid_site", "No such site.")}
		}
		if user, err := e.App.FindAuthRecordByEmail("users", inv.GetString("email")); err == nil && roleOf(site, user.Id) != "" {
			return validation.Errors{"email": validation.NewError("validation_already_on_site",
				"This address already has access to the site.")}
		}
		// An expired invitation of the address gives way to the new one.
		old, err := e.App.FindFirstRecordByFilter(access.InvitationsCollection, "site = {:site} && email = {:email}",
			dbx.Params{"site": site.Id, "email": inv.GetString("email")})
		if err == nil && !time.Now().Before(old.GetDateTime("expires").Time()) {
			if err := e.App.Delete(old); err != nil {
				return err
			}
		}
		token := access.NewToken()
		inv.Set("tokenHash", access.HashKey(token))
		inv.Set("expires", time.Now().Add(config.InvitationTTL))
		if err := e.Next(); err != nil {
			return err
		}
		if err := sendInvitation(e.App, inv, site, dashboard+"invite/"+token); err != nil {
			if derr := e.App.Delete(inv); derr != nil {
				e.App.Logger().Error("invitations: removing an unsent invitation failed", "invitation", inv.Id, "error", derr)
			}
			return router.NewApiError(http.StatusServiceUnavailable,
				"The invitation mail could not be sent; check the mail settings (SMTP) in the admin UI.", err)
		}
		return nil
	})

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET(InvitePath+"/{token}", invitationInfo)
		se.Router.POST(InvitePath+"/{token}/accept", acceptInvitation)
		se.Router.GET("/api/analytics/sites/{siteId}/team", siteTeam)
		return se.Next()
	})
	return nil
}

// roleOf returns the user's role on the site: "owner", migrations.RoleAdmin,
// migrations.RoleMember or "" for none.
func roleOf(site *core.Record, userID string) string {
	switch {
	case site.GetString("owner") == userID:
		return "owner"
	case slices.Contains(site.GetStringSlice("admins"), userID):
		return migrations.RoleAdmin
	case slices.Contains(site.GetStringSlice("members"), userID):
		return migrations.RoleMember
	}
	return ""
}

func sendInvitation(app core.App, inv, site *core.Record, path string) error {
	link := strings.TrimRight(app.Settings().Meta.AppURL, "/") + path
	by := "You are"
	if inviter, err := app.FindRecordById("users", inv.GetString("invitedBy")); err == nil {
		by = inviter.Email() + " invites you"
	}
	role := "see its statistics"
	if inv.GetString("role") == migrations.RoleAdmin {
		role = "manage it and see its statistics"
	}
	text := fmt.Sprintf("%s to join %q on %s, to %s.\n\nAccept the invitation (signing up first if you have no account with this address):\n%s\n\nThe link works until %s.\n",
		by, site.GetString("name"), app.Settings().Meta.AppName, role, link,
		inv.GetDateTime("expires").Time().Format("2 January 2006 15:04 MST"))
	esc := html.EscapeString
	body := fmt.Sprintf(`<p>%s to join <strong>%s</strong> on %s, to %s.</p>`+
		`<p><a href="%s">Accept the invitation</a> (signing up first if you have no account with this address).</p>`+
		`<p>The link works until %s.</p>`,
		esc(by), esc(site.GetString("name")), esc(app.Settings().Meta.AppName), role, esc(link),
		esc(inv.GetDateTime("expires").Time().Format("2 January 2006 15:04 MST")))
	return app.NewMailClient().Send(&mailer.Message{
		From:    sender(app),
		To:      []mail.Address{{Address: inv.GetString("email")}},
		Subject: "Invitation to " + strings.Join(strings.Fields(site.GetString("name")), " "),
		HTML:    body,
		Text:    text,
	})
}

// findInvitation returns the unexpired invitation of the link's token.
func findInvitation(app core.App, token string) (*core.Record, error) {
	if len(token) != access.TokenLength {
		return nil, errNoInvitation
	}
	inv, err := app.FindFirstRecordByData(access.InvitationsCollection, "tokenHash", access.HashKey(token))
	if err != nil {
		return nil, err
	}
	if !time.Now().Before(inv.GetDateTime("expires").Time()) {
		return nil, errNoInvitation
	}
	return inv, nil
}

var errNoInvitation = errors.New("hooks: no such invitation")

const noInvitation = "This invitation does not exist, expired, was revoked or was used."

type invitationJSON struct {
	Site    shareSite      `json:"site"`
	Email   string         `json:"email"`
	Role    string         `json:"role"`
	Expires types.DateTime `json:"expires"`
}

func invitationInfo(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	inv, err := findInvitation(e.App, e.Request.PathValue("token"))
	if err != nil {
		return e.NotFoundError(noInvitation, nil)
	}
	site, err := e.App.FindRecordById(sitecache.Collection, inv.GetString("site"))
	if err != nil {
		return e.NotFoundError(noInvitation, nil)
	}
	return e.JSON(http.StatusOK, invitationJSON{
		Site: *siteOf(site), Email: inv.GetString("email"), Role: inv.GetString("role"), Expires: inv.GetDateTime("expires"),
	})
}

func acceptInvitation(e *core.RequestEvent) error {
	if e.Auth == nil || e.Auth.Collection().Name != "users" {
		return e.UnauthorizedError("Sign in (or sign up) with the invited address to accept.", nil)
	}
	inv, err := findInvitation(e.App, e.Request.PathValue("token"))
	if err != nil {
		return e.NotFoundError(noInvitation, nil)
	}
	if !strings.EqualFold(e.Auth.Email(), inv.GetString("email")) {
		return e.ForbiddenError(fmt.Sprintf("This invitation is for %s; sign in with that address.", inv.GetString("email")), nil)
	}
	var siteID string
	err = e.App.RunInTransaction(func(tx core.App) error {
		site, err := tx.FindRecordById(sitecache.Collection, inv.GetString("site"))
		if err != nil {
			return err
		}
		siteID = site.Id
		if roleOf(site, e.Auth.Id) != "owner" {
			setRole(site, e.Auth.Id, inv.GetString("role"))
			if err := tx.Save(site); err != nil {
				return err
			}
		}
		return tx.Delete(inv)
	})
	if err != nil {
		return e.BadRequestError("The invitation could not be accepted.", err)
	}
	return e.JSON(http.StatusOK, map[string]string{"site": siteID, "role": inv.GetString("role")})
}

// setRole makes the user an admin or a member of the site, whichever they
// were before.
func setRole(site *core.Record, userID, role string) {
	admins := slices.DeleteFunc(site.GetStringSlice("admins"), func(id string) bool { return id == userID })
	members := slices.DeleteFunc(site.GetStringSlice("members"), func(id string) bool { return id == userID })
	if role == migrations.RoleAdmin {
		admins = append(admins, userID)
	} else {
		members = append(members, userID)
	}
	site.Set("admins", admins)
	site.Set("members", members)
}

type teamMember struct {
	Id    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

func siteTeam(e *core.RequestEvent) error {
	site, err := e.App.FindRecordById(sitecache.Collection, e.Request.PathValue("siteId"))
	if err != nil {
		return e.NotFoundError("", nil)
	}
	if !e.HasSuperuserAuth() {
		if e.Auth == nil || roleOf(site, e.Auth.Id) != "owner" && roleOf(site, e.Auth.Id) != migrations.RoleAdmin {
			return e.NotFoundError("", nil)
		}
	}
	ids := slices.Concat([]string{site.GetString("owner")}, site.GetStringSlice("admins"), site.GetStringSlice("members"))
	users, err := e.App.FindRecordsByIds("users", ids)
	if err != nil {
		return e.InternalServerError("", err)
	}
	emails := make(map[string]string, len(users))
	for _, u := range users {
		emails[u.Id] = u.Email()
	}
	out := make([]teamMember, 0, len(ids))
	for _, id := range ids {
		out = append(out, teamMember{Id: id, Email: emails[id], Role: roleOf(site, id)})
	}
	return e.JSON(http.StatusOK, out)
}

// sender is the From of the mails the app sends, as set in the admin UI.
func sender(app core.App) mail.Address {
	return mail.Address{Name: app.Settings().Meta.SenderName, Address: app.Settings().Meta.SenderAddress}
}

package hooks

import (
	"net/http"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/internal/ratelimit"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// SharePath is where the dashboard's share page learns what a link opens:
// GET SharePath/{token} and POST SharePath/{token}/unlock.
const SharePath = "/api/analytics/share"

// RegisterShares binds the hooks of the shares collection (created by the
// migrations package) and the routes of the share page:
//
//   - every new share gets a random token, whatever the request says;
//   - GET /api/analytics/share/{token} tells the share page which site a
//     link opens (id, name, timezone) and whether it has the live view, or
//     only that a password is needed ({"locked": true}) until the request
//     carries the proof. The token may also be a public site's id;
//   - POST /api/analytics/share/{token}/unlock with {"password": "…"}
//     returns {"proof": "…"}, which the page sends with every request as
//     proof=… (see package access).
func RegisterShares(app core.App) error {
	app.OnRecordCreate(access.SharesCollection).BindFunc(func(e *core.RecordEvent) error {
		e.Record.Set("token", access.NewToken())
		return e.Next()
	})

	// Guessing passwords costs a bcrypt comparison each; a few a second per
	// address is plenty for people typing.
	guesses := ratelimit.New(ratelimit.Options{Rate: 1, Burst: 5})
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET(SharePath+"/{token}", shareInfo)
		se.Router.POST(SharePath+"/{token}/unlock", func(e *core.RequestEvent) error {
			if !guesses.Allow(e.RealIP()) {
				return e.TooManyRequestsError("Too many attempts, wait a moment.", nil)
			}
			return unlockShare(e)
		})
		return se.Next()
	})
	return nil
}

// shareSite is what a share link shows of its site.
type shareSite struct {
	Id       string `json:"id"`
	Name     string `json:"name"`
	Timezone string `json:"timezone"`
}

type shareInfoJSON struct {
	Site     *shareSite     `json:"site,omitempty"`
	Live     bool           `json:"live"`
	Password bool           `json:"password"`
	Locked   bool           `json:"locked,omitempty"`
	Expires  types.DateTime `json:"expires"`
}

func shareInfo(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	ref := e.Request.PathValue("token")
	if share, err := access.FindShare(e.App, ref); err == nil {
		out := shareInfoJSON{Password: access.HasPassword(share)}
		if !access.Unlocked(share, e.Request.URL.Query().Get(access.ProofParam)) {
			out.Locked = true
			return e.JSON(http.StatusOK, out)
		}
		site, err := e.App.FindRecordById(sitecache.Collection, share.GetString("site"))
		if err != nil {
			return e.NotFoundError("", nil)
		}
		out.Site = siteOf(site)
		out.Live = share.GetBool("live")
		out.Expires = share.GetDateTime("expires")
		return e.JSON(http.StatusOK, out)
	}
	site, err := e.App.FindRecordById(sitecache.Collection, ref)
	if err != nil || !site.GetBool("public") {
		return e.NotFoundError("This link does not exist, expired or was revoked.", nil)
	}
	return e.JSON(http.StatusOK, shareInfoJSON{Site: siteOf(site), Live: true})
}

func siteOf(r *core.Record) *shareSite {
	return &shareSite{Id: r.Id, Name: r.GetString("name"), Timezone: r.GetString("timezone")}
}

func unlockShare(e *core.RequestEvent) error {
	share, err := access.FindShare(e.App, e.Request.PathValue("token"))
	if err != nil {
		return e.NotFoundError("This link does not exist, expired or was revoked.", nil)
	}
	var body struct {
		Password string `json:"password" form:"password"`
	}
	if err := e.BindBody(&body); err != nil {
		return e.BadRequestError("Send the password as {\"password\": \"…\"}.", err)
	}
	if !access.HasPassword(share) {
		return e.JSON(http.StatusOK, map[string]string{"proof": ""})
	}
	if !access.CheckPassword(share, body.Password) {
		return e.BadRequestError("The password is wrong.", nil)
	}
	return e.JSON(http.StatusOK, map[string]string{"proof": access.Proof(share)})
}

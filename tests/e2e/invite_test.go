package e2e

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestInvitation invites an admin in the owner's browser, follows the link
// of the mail the app sent over SMTP in a second browser, signs up there,
// accepts and sees the site; then the owner makes them a member and their
// settings tab goes (see invite.mjs).
func TestInvitation(t *testing.T) {
	browser := chromium(t)
	app := testutil.StartApp(t, testutil.AppOptions{})
	requireRoute(t, app, "/", `<div id="app">`)
	sink := testutil.StartSMTPSink(t)
	admin := app.SuperuserToken(t)
	app.Call(t, "PATCH", "/api/settings", admin, map[string]any{
		"meta": map[string]any{"appURL": app.URL, "senderAddress": "analytics@example.com", "senderName": "Pocketlytics"},
		"smtp": map[string]any{"enabled": true, "host": sink.Host, "port": sink.Port},
	}, nil, http.StatusOK)

	owner := newSiteOwner(t, app, "E2E team shop", "UTC", "team.pocketlytics.test")
	invitee := testutil.Unique("invitee") + "@example.com"

	// The script asks here for the link of the mail sent to an address.
	link := regexp.MustCompile(`https?://[^\s"<]+/invite/[A-Za-z0-9]{40}`)
	mails := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		msgs := sink.Messages()
		i := slices.IndexFunc(msgs, func(m string) bool { return strings.Contains(m, to) })
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(link.FindString(msgs[i])))
	}))
	t.Cleanup(mails.Close)

	runScript(t, "invite.mjs", 2*time.Minute,
		"CHROMIUM_PATH="+browser,
		"APP_URL="+app.URL,
		"SITE_ID="+owner.SiteID,
		"OWNER_EMAIL="+owner.Email,
		"OWNER_PASSWORD="+owner.Password,
		"INVITEE_EMAIL="+invitee,
		"MAIL_URL="+mails.URL,
	)
}

package hooks_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// rolesServer serves the collections and the analytics routes with every
// hook that decides access, as analytics.Register wires them. The Berlin
// site has owner, admin and member.
func rolesServer(t *testing.T) (*tests.TestApp, *httptest.Server) {
	t.Helper()
	fx := newAnalyticsFixture(t, "sqlite")
	app := fx.app(t, 0)
	t.Cleanup(app.Cleanup)
	for _, err := range []error{
		hooks.RegisterSites(app),
		hooks.RegisterConversions(app),
		hooks.RegisterShares(app),
		hooks.RegisterInvitations(app, "/"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return app, livetest.Serve(t, app)
}

const (
	sitesURL       = "/api/collections/sites/records"
	invitationsURL = "/api/collections/" + access.InvitationsCollection + "/records"
)

// TestSiteRoles checks what owner, admin, member and stranger may do with a
// site and its objects, over the collections' REST API, the analytics API
// and the live layer.
func TestSiteRoles(t *testing.T) {
	app, srv := rolesServer(t)
	site := sitesURL + "/" + berlinSiteID
	who := []string{ownerID, adminID, memberID, strangerID}

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   func(who string) any
		allow  [4]bool // owner, admin, member, stranger
	}{
		{"view the site", "GET", site, nil, [4]bool{true, true, true, false}},
		{"read the statistics", "GET", apiURL(berlinSiteID, "overview", "period=7d"), nil, [4]bool{true, true, true, false}},
		{"read a breakdown", "GET", apiURL(berlinSiteID, "breakdown/page", "period=7d"), nil, [4]bool{true, true, true, false}},
		{"change the settings", "PATCH", site, func(string) any { return map[string]any{"name": "Berlin"} }, [4]bool{true, true, false, false}},
		{"create a goal", "POST", "/api/collections/goals/records", func(w string) any {
			return map[string]any{"site": berlinSiteID, "name": "Signup " + w, "event": "signup"}
		}, [4]bool{true, true, false, false}},
		{"create a funnel", "POST", "/api/collections/funnels/records", func(w string) any {
			return map[string]any{"site": berlinSiteID, "name": "Funnel " + w, "steps": []any{map[string]string{"page": "/"}, map[string]string{"event": "signup"}}}
		}, [4]bool{true, true, false, false}},
		{"create a share", "POST", "/api/collections/" + access.SharesCollection + "/records", func(string) any {
			return map[string]any{"site": berlinSiteID, "label": "client"}
		}, [4]bool{true, true, false, false}},
		{"invite a member", "POST", invitationsURL, func(w string) any {
			return map[string]any{"site": berlinSiteID, "email": "m-" + w + "@example.com", "role": "member"}
		}, [4]bool{true, true, false, false}},
		{"invite an admin", "POST", invitationsURL, func(w string) any {
			return map[string]any{"site": berlinSiteID, "email": "a-" + w + "@example.com", "role": "admin"}
		}, [4]bool{true, false, false, false}},
		{"see the team", "GET", "/api/analytics/sites/" + berlinSiteID + "/team", nil, [4]bool{true, true, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, id := range who {
				var body any
				if tc.body != nil {
					body = tc.body(id)
				}
				res, text := call(t, srv, tc.method, tc.path, auth(id, t), body)
				if ok := res.StatusCode < 300; ok != tc.allow[i] {
					t.Errorf("%s: status %d, allowed %v, want %v: %s", id, res.StatusCode, ok, tc.allow[i], text)
				}
				if !tc.allow[i] && res.StatusCode >= 500 {
					t.Errorf("%s: status %d, want a 4xx", id, res.StatusCode)
				}
			}
		})
	}

	t.Run("list objects", func(t *testing.T) {
		for _, c := range []string{"goals", "funnels", access.SharesCollection, access.InvitationsCollection} {
			for i, id := range who {
				_, text := call(t, srv, "GET", "/api/collections/"+c+"/records", auth(id, t), nil)
				var list struct{ TotalItems int }
				json.Unmarshal([]byte(text), &list)
				// Members read goals and funnels; shares and invitations are the managers'.
				want := i < 2 || i == 2 && (c == "goals" || c == "funnels")
				if got := list.TotalItems > 0; got != want {
					t.Errorf("%s lists %s: %d items, want some: %v", id, c, list.TotalItems, want)
				}
			}
		}
	})

	t.Run("live", func(t *testing.T) {
		rec, err := app.FindRecordById("sites", berlinSiteID)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range who {
			user, err := app.FindRecordById("users", id)
			if err != nil {
				t.Fatal(err)
			}
			info := &core.RequestInfo{Auth: user, Query: map[string]string{}, Headers: map[string]string{}, Body: map[string]any{}}
			if got, want := realtime.CanView(app, rec, info), i < 3; got != want {
				t.Errorf("%s sees the live view: %v, want %v", id, got, want)
			}
		}
	})

	t.Run("delete the site", func(t *testing.T) {
		for _, id := range []string{strangerID, memberID, adminID} {
			res, text := call(t, srv, "DELETE", site, auth(id, t), nil)
			if res.StatusCode < 400 || res.StatusCode >= 500 {
				t.Fatalf("%s deleted the site: %d %s", id, res.StatusCode, text)
			}
		}
		res, text := call(t, srv, "DELETE", site, auth(ownerID, t), nil)
		wantStatus(t, "the owner deletes", res, text, 204)
	})
}

// TestRoleChanges walks the owner's and the admins' changes of roles and a
// transfer of ownership.
func TestRoleChanges(t *testing.T) {
	app, srv := rolesServer(t)
	site := sitesURL + "/" + berlinSiteID
	roles := func(t *testing.T, owner string, admins, members []string) {
		t.Helper()
		r, err := app.FindRecordById("sites", berlinSiteID)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetString("owner") != owner || !slices.Equal(r.GetStringSlice("admins"), admins) || !slices.Equal(r.GetStringSlice("members"), members) {
			t.Fatalf("owner %s, admins %v, members %v; want %s, %v, %v",
				r.GetString("owner"), r.GetStringSlice("admins"), r.GetStringSlice("members"), owner, admins, members)
		}
	}
	for _, step := range []struct {
		name    string
		by      string
		body    map[string]any
		ok      bool
		owner   string
		admins  []string
		members []string
	}{
		{"an admin removes an admin", adminID, map[string]any{"admins-": adminID}, false, ownerID, []string{adminID}, []string{memberID}},
		{"an admin takes the site", adminID, map[string]any{"owner": adminID}, false, ownerID, []string{adminID}, []string{memberID}},
		{"an admin adds a stranger", adminID, map[string]any{"members+": strangerID}, false, ownerID, []string{adminID}, []string{memberID}},
		{"an admin demotes an admin", adminID, map[string]any{"members+": adminID}, false, ownerID, []string{adminID}, []string{memberID}},
		{"the owner adds a stranger", ownerID, map[string]any{"admins+": strangerID}, false, ownerID, []string{adminID}, []string{memberID}},
		{"the owner promotes a member", ownerID, map[string]any{"admins+": memberID}, true, ownerID, []string{adminID, memberID}, []string{}},
		{"the owner demotes an admin", ownerID, map[string]any{"members+": memberID}, true, ownerID, []string{adminID}, []string{memberID}},
		{"the owner hands over to a stranger", ownerID, map[string]any{"owner": strangerID}, false, ownerID, []string{adminID}, []string{memberID}},
		{"the owner hands over to a member", ownerID, map[string]any{"owner": memberID}, true, memberID, []string{adminID, ownerID}, []string{}},
		{"the old owner takes it back", ownerID, map[string]any{"owner": ownerID}, false, memberID, []string{adminID, ownerID}, []string{}},
		{"the new owner demotes the old", memberID, map[string]any{"members+": ownerID}, true, memberID, []string{adminID}, []string{ownerID}},
		{"an admin removes a member", adminID, map[string]any{"members-": ownerID}, true, memberID, []string{adminID}, []string{}},
		{"the owner removes an admin", memberID, map[string]any{"admins-": adminID}, true, memberID, []string{}, []string{}},
	} {
		t.Run(step.name, func(t *testing.T) {
			res, text := call(t, srv, "PATCH", site, auth(step.by, t), step.body)
			if ok := res.StatusCode == 200; ok != step.ok || !ok && res.StatusCode >= 500 {
				t.Fatalf("status %d, want success %v: %s", res.StatusCode, step.ok, text)
			}
			roles(t, step.owner, step.admins, step.members)
		})
	}
	res, text := call(t, srv, "GET", apiURL(berlinSiteID, "overview", "period=7d"), auth(ownerID, t), nil)
	wantStatus(t, "the removed old owner reads", res, text, 404)
}

var inviteLink = regexp.MustCompile(`https?://[^\s"<]+/invite/([A-Za-z0-9]{40})`)

// invite creates an invitation as the user and returns the token of the
// link in the mail it sent.
func invite(t *testing.T, app *tests.TestApp, srv *httptest.Server, by, email, role string) (id, token string) {
	t.Helper()
	sent := app.TestMailer.TotalSend()
	res, text := call(t, srv, "POST", invitationsURL, auth(by, t), map[string]any{"site": berlinSiteID, "email": email, "role": role})
	wantStatus(t, "invite "+email, res, text, 200)
	if app.TestMailer.TotalSend() != sent+1 {
		t.Fatalf("%d mails sent, want 1", app.TestMailer.TotalSend()-sent)
	}
	msg := app.TestMailer.LastMessage()
	if len(msg.To) != 1 || msg.To[0].Address != strings.ToLower(email) {
		t.Fatalf("mail to %v, want %s", msg.To, email)
	}
	m := inviteLink.FindStringSubmatch(msg.Text)
	if m == nil || !strings.Contains(msg.HTML, m[0]) {
		t.Fatalf("no invitation link in the mail:\n%s\n%s", msg.Text, msg.HTML)
	}
	var inv struct{ Id string }
	json.Unmarshal([]byte(text), &inv)
	return inv.Id, m[1]
}

// TestInvitation follows an invitation from the mail to membership: the
// link's page, signing up with the invited address, accepting, and the
// role it gives; then revoked, expired and unsendable invitations.
func TestInvitation(t *testing.T) {
	app, srv := rolesServer(t)

	res, text := call(t, srv, "POST", invitationsURL, auth(ownerID, t), map[string]any{
		"site": berlinSiteID, "email": "New.User@Example.com", "role": "admin",
		"tokenHash": strings.Repeat("0", 64), "invitedBy": strangerID, "expires": "2099-01-01 00:00:00.000Z",
	})
	wantStatus(t, "invite", res, text, 200)
	if strings.Contains(text, "tokenHash") || strings.Contains(text, strings.Repeat("0", 64)) ||
		!strings.Contains(text, `"invitedBy":"`+ownerID+`"`) || !strings.Contains(text, `"email":"new.user@example.com"`) ||
		strings.Contains(text, "2099") {
		t.Fatalf("the invitation took the client's token, inviter or expiry, or shows its hash: %s", text)
	}
	msg := app.TestMailer.LastMessage()
	m := inviteLink.FindStringSubmatch(msg.Text)
	if m == nil || !strings.HasPrefix(m[0], app.Settings().Meta.AppURL+"/invite/") || !strings.Contains(msg.Text, ownerID+"@example.com") ||
		!strings.Contains(msg.Subject, "Berlin") || msg.To[0].Address != "new.user@example.com" {
		t.Fatalf("invitation mail %q to %v:\n%s", msg.Subject, msg.To, msg.Text)
	}
	token := m[1]
	page := hooks.InvitePath + "/" + token

	res, text = call(t, srv, "GET", page, nil, nil)
	wantStatus(t, "the link's page", res, text, 200)
	if !strings.Contains(text, `"name":"Berlin"`) || !strings.Contains(text, `"role":"admin"`) || strings.Contains(text, "example.de") {
		t.Fatalf("invitation info: %s", text)
	}
	res, text = call(t, srv, "POST", page+"/accept", nil, nil)
	wantStatus(t, "accept signed out", res, text, 401)
	res, text = call(t, srv, "POST", page+"/accept", auth(strangerID, t), nil)
	wantStatus(t, "accept as another user", res, text, 403)

	// Sign up with the invited address, as the dashboard does.
	res, text = call(t, srv, "POST", "/api/collections/users/records", nil, map[string]any{
		"email": "new.user@example.com", "password": "new-password-1", "passwordConfirm": "new-password-1",
	})
	wantStatus(t, "sign up", res, text, 200)
	res, text = call(t, srv, "POST", "/api/collections/users/auth-with-password", nil, map[string]any{
		"identity": "new.user@example.com", "password": "new-password-1",
	})
	wantStatus(t, "sign in", res, text, 200)
	var session struct {
		Token  string
		Record struct{ Id string }
	}
	json.Unmarshal([]byte(text), &session)
	newUser := map[string]string{"Authorization": session.Token}

	overview := apiURL(berlinSiteID, "overview", "period=7d")
	res, text = call(t, srv, "GET", overview, newUser, nil)
	wantStatus(t, "statistics before accepting", res, text, 404)
	res, text = call(t, srv, "POST", page+"/accept", newUser, nil)
	wantStatus(t, "accept", res, text, 200)
	r, _ := app.FindRecordById("sites", berlinSiteID)
	if !slices.Contains(r.GetStringSlice("admins"), session.Record.Id) || slices.Contains(r.GetStringSlice("members"), session.Record.Id) {
		t.Fatalf("after accepting: admins %v, members %v", r.GetStringSlice("admins"), r.GetStringSlice("members"))
	}
	res, text = call(t, srv, "GET", overview, newUser, nil)
	wantStatus(t, "statistics after accepting", res, text, 200)
	res, text = call(t, srv, "PATCH", sitesURL+"/"+berlinSiteID, newUser, map[string]any{"name": "Berlin shop"})
	wantStatus(t, "an admin renames", res, text, 200)
	res, text = call(t, srv, "POST", page+"/accept", newUser, nil)
	wantStatus(t, "accept twice", res, text, 404)
	if n, _ := app.CountRecords(access.InvitationsCollection); n != 0 {
		t.Fatalf("%d invitations left after accepting", n)
	}

	t.Run("team", func(t *testing.T) {
		res, text := call(t, srv, "GET", "/api/analytics/sites/"+berlinSiteID+"/team", newUser, nil)
		wantStatus(t, "team", res, text, 200)
		for _, s := range []string{`{"id":"` + ownerID + `","email":"` + ownerID + `@example.com","role":"owner"}`,
			`"email":"new.user@example.com","role":"admin"`, `"role":"member"`} {
			if !strings.Contains(text, s) {
				t.Fatalf("team without %s: %s", s, text)
			}
		}
	})

	t.Run("already on the site", func(t *testing.T) {
		res, text := call(t, srv, "POST", invitationsURL, auth(ownerID, t), map[string]any{"site": berlinSiteID, "email": memberID + "@example.com", "role": "admin"})
		wantStatus(t, "invite a member", res, text, 400)
		if !strings.Contains(text, "validation_already_on_site") {
			t.Fatalf("want an email field error: %s", text)
		}
	})

	t.Run("invited twice", func(t *testing.T) {
		invite(t, app, srv, ownerID, "twice@example.com", "member")
		res, text := call(t, srv, "POST", invitationsURL, auth(adminID, t), map[string]any{"site": berlinSiteID, "email": "Twice@example.com", "role": "member"})
		wantStatus(t, "invite again", res, text, 400)
	})

	t.Run("member invited by an admin", func(t *testing.T) {
		_, tok := invite(t, app, srv, adminID, "Stranger0000001@example.com", "member")
		res, text := call(t, srv, "POST", hooks.InvitePath+"/"+tok+"/accept", auth(strangerID, t), nil)
		wantStatus(t, "accept", res, text, 200)
		res, text = call(t, srv, "GET", overview, auth(strangerID, t), nil)
		wantStatus(t, "a new member reads", res, text, 200)
		res, text = call(t, srv, "PATCH", sitesURL+"/"+berlinSiteID, auth(strangerID, t), map[string]any{"name": "Mine"})
		if res.StatusCode < 400 {
			t.Fatalf("a member renamed the site: %s", text)
		}
		call(t, srv, "PATCH", sitesURL+"/"+berlinSiteID, auth(ownerID, t), map[string]any{"members-": strangerID})
	})

	t.Run("revoked", func(t *testing.T) {
		id, tok := invite(t, app, srv, ownerID, "later@example.com", "member")
		res, text := call(t, srv, "DELETE", invitationsURL+"/"+id, auth(memberID, t), nil)
		if res.StatusCode < 400 {
			t.Fatalf("a member revoked an invitation: %s", text)
		}
		res, text = call(t, srv, "DELETE", invitationsURL+"/"+id, auth(ownerID, t), nil)
		wantStatus(t, "revoke", res, text, 204)
		res, text = call(t, srv, "GET", hooks.InvitePath+"/"+tok, nil, nil)
		wantStatus(t, "revoked link", res, text, 404)
	})

	t.Run("expired", func(t *testing.T) {
		id, tok := invite(t, app, srv, ownerID, "old@example.com", "member")
		inv, err := app.FindRecordById(access.InvitationsCollection, id)
		if err != nil {
			t.Fatal(err)
		}
		inv.Set("expires", time.Now().Add(-time.Second))
		if err := app.Save(inv); err != nil {
			t.Fatal(err)
		}
		res, text := call(t, srv, "GET", hooks.InvitePath+"/"+tok, nil, nil)
		wantStatus(t, "expired link", res, text, 404)
		_, fresh := invite(t, app, srv, ownerID, "old@example.com", "member")
		res, text = call(t, srv, "GET", hooks.InvitePath+"/"+fresh, nil, nil)
		wantStatus(t, "a new invitation in place of the expired", res, text, 200)
		for _, bad := range []string{strings.Repeat("a", 40), tok[:39], "x"} {
			res, text := call(t, srv, "GET", hooks.InvitePath+"/"+bad, nil, nil)
			wantStatus(t, "unknown token", res, text, 404)
		}
	})

	t.Run("mail fails", func(t *testing.T) {
		app.OnMailerSend().BindFunc(func(e *core.MailerEvent) error { return errors.New("smtp: connection refused") })
		res, text := call(t, srv, "POST", invitationsURL, auth(ownerID, t), map[string]any{"site": berlinSiteID, "email": "lost@example.com", "role": "member"})
		wantStatus(t, "invite without mail", res, text, 503)
		if _, err := app.FindFirstRecordByData(access.InvitationsCollection, "email", "lost@example.com"); err == nil {
			t.Fatal("an invitation whose mail failed was kept")
		}
	})
}

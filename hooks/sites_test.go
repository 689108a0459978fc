package hooks_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/tests"
)

func TestSitesRules(t *testing.T) {
	const (
		records = "/api/collections/sites/records"
		site    = records + "/" + siteID
	)

	// as is a request made by one of the fixture users ("" = guest).
	type as = string
	const guest as = ""

	scenarios := []struct {
		name        string
		method      string
		url         string
		as          as
		body        string
		status      int
		content     []string
		notExpected []string
		after       func(t testing.TB, f *fixture)
	}{
		// list
		{name: "guest lists nothing", method: "GET", url: records, as: guest, status: 200, content: []string{`"totalItems":0`}},
		{name: "stranger lists nothing", method: "GET", url: records, as: strangerID, status: 200, content: []string{`"totalItems":0`}},
		{name: "owner lists own sites", method: "GET", url: records, as: ownerID, status: 200,
			content: []string{`"totalItems":2`, `"id":"` + siteID + `"`, `"id":"` + subsSiteID + `"`}},
		{name: "member lists shared site", method: "GET", url: records, as: memberID, status: 200,
			content: []string{`"totalItems":1`, `"id":"` + siteID + `"`}, notExpected: []string{subsSiteID}},
		{name: "superuser lists all", method: "GET", url: records, as: superuserID, status: 200, content: []string{`"totalItems":2`}},

		// view
		{name: "guest cannot view", method: "GET", url: site, as: guest, status: 404, content: []string{`"status":404`}},
		{name: "stranger cannot view", method: "GET", url: site, as: strangerID, status: 404, content: []string{`"status":404`}},
		{name: "member views", method: "GET", url: site, as: memberID, status: 200, content: []string{`"id":"` + siteID + `"`}},
		{name: "owner views", method: "GET", url: site, as: ownerID, status: 200,
			content: []string{`"domains":["example.com"]`, `"owner":"` + ownerID + `"`, `"timezone":"UTC"`}},

		// create
		{name: "guest cannot create", method: "POST", url: records, as: guest, status: 400,
			body: `{"name":"Mine","domains":["mine.example"],"owner":"` + strangerID + `"}`, content: []string{`"status":400`},
			after: siteCount(2)},
		{name: "create sets the owner to the creator", method: "POST", url: records, as: strangerID, status: 200,
			body:    `{"name":"Mine","domains":[" Mine.Example. ","bücher.de","mine.example"]}`,
			content: []string{`"owner":"` + strangerID + `"`, `"domains":["mine.example","xn--bcher-kva.de"]`, `"timezone":"UTC"`}},
		{name: "create naming oneself owner", method: "POST", url: records, as: strangerID, status: 200,
			body: `{"name":"Mine","domains":["mine.example"],"owner":"` + strangerID + `"}`, content: []string{`"owner":"` + strangerID + `"`}},
		{name: "create for someone else is refused", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":["mine.example"],"owner":"` + ownerID + `"}`, content: []string{`"status":400`},
			after: siteCount(2)},
		{name: "create listing another user as member is refused", method: "POST", url: records, as: strangerID, status: 400,
			body:    `{"name":"Mine","domains":["mine.example"],"members":["` + ownerID + `"]}`,
			content: []string{`"members":{"code":"validation_members_need_consent"`}, after: siteCount(2)},
		{name: "superuser creates for anyone", method: "POST", url: records, as: superuserID, status: 200,
			body:    `{"name":"Theirs","domains":["theirs.example"],"owner":"` + memberID + `","timezone":"Europe/Berlin"}`,
			content: []string{`"owner":"` + memberID + `"`, `"timezone":"Europe/Berlin"`}},
		{name: "domain with scheme", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":["https://mine.example/"]}`, content: []string{`"domains":{"code":"validation_invalid_domain"`}},
		{name: "domain with port", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":["mine.example:8080"]}`, content: []string{`"domains":{"code":"validation_invalid_domain"`}},
		{name: "no domains", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":[]}`, content: []string{`"domains":{"code":"validation_required"`}},
		{name: "domains not a list", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":"mine.example"}`, content: []string{`"domains":{"code":"validation_invalid_domains"`}},
		{name: "domain not a string", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":[42]}`, content: []string{`"domains":{"code":"validation_invalid_domain"`}},
		{name: "unknown timezone", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":["mine.example"],"timezone":"Mars/Olympus"}`, content: []string{`"timezone":{"code":"validation_invalid_timezone"`}},
		{name: "server-local timezone", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"name":"Mine","domains":["mine.example"],"timezone":"Local"}`, content: []string{`"timezone":{"code":"validation_invalid_timezone"`}},
		{name: "missing name", method: "POST", url: records, as: strangerID, status: 400,
			body: `{"domains":["mine.example"]}`, content: []string{`"name":{"code":"validation_required"`}},

		// update
		{name: "guest cannot update", method: "PATCH", url: site, as: guest, status: 404,
			body: `{"name":"Hacked"}`, content: []string{`"status":404`}, after: siteUnchanged},
		{name: "stranger cannot update", method: "PATCH", url: site, as: strangerID, status: 404,
			body: `{"name":"Hacked"}`, content: []string{`"status":404`}, after: siteUnchanged},
		{name: "member cannot update", method: "PATCH", url: site, as: memberID, status: 404,
			body: `{"name":"Hacked"}`, content: []string{`"status":404`}, after: siteUnchanged},
		{name: "member cannot take ownership", method: "PATCH", url: site, as: memberID, status: 404,
			body: `{"owner":"` + memberID + `"}`, content: []string{`"status":404`}, after: siteUnchanged},
		{name: "owner updates", method: "PATCH", url: site, as: ownerID, status: 200,
			body: `{"name":"Renamed","domains":["Example.org"]}`, content: []string{`"name":"Renamed"`, `"domains":["example.org"]`}},
		{name: "owner cannot add a member", method: "PATCH", url: site, as: ownerID, status: 400,
			body: `{"members":["` + memberID + `","` + strangerID + `"]}`, content: []string{`"members":{"code":"validation_members_need_consent"`}, after: siteUnchanged},
		{name: "owner cannot add a member with +", method: "PATCH", url: site, as: ownerID, status: 400,
			body: `{"members+":"` + strangerID + `"}`, content: []string{`"validation_members_need_consent"`}, after: siteUnchanged},
		{name: "owner removes a member", method: "PATCH", url: site, as: ownerID, status: 200,
			body: `{"members":[]}`, content: []string{`"members":[]`}},
		{name: "superuser adds a member", method: "PATCH", url: site, as: superuserID, status: 200,
			body: `{"members+":"` + strangerID + `"}`, content: []string{`"members":["` + memberID + `","` + strangerID + `"]`}},
		{name: "owner hands the site over", method: "PATCH", url: site, as: ownerID, status: 200,
			body: `{"owner":"` + memberID + `"}`, content: []string{`"owner":"` + memberID + `"`}},
		{name: "owner cannot store a bad domain", method: "PATCH", url: site, as: ownerID, status: 400,
			body: `{"domains":["*.example.com"]}`, content: []string{`"domains":{"code":"validation_invalid_domain"`}, after: siteUnchanged},
		{name: "superuser updates", method: "PATCH", url: site, as: superuserID, status: 200,
			body: `{"public":true}`, content: []string{`"public":true`}},

		// delete
		{name: "stranger cannot delete", method: "DELETE", url: site, as: strangerID, status: 404,
			content: []string{`"status":404`}, after: siteCount(2)},
		{name: "member cannot delete", method: "DELETE", url: site, as: memberID, status: 404,
			content: []string{`"status":404`}, after: siteCount(2)},
		{name: "owner deletes", method: "DELETE", url: site, as: ownerID, status: 204, after: siteCount(1)},
		{name: "superuser deletes", method: "DELETE", url: site, as: superuserID, status: 204, after: siteCount(1)},
	}

	for _, s := range scenarios {
		var f *fixture
		sc := tests.ApiScenario{
			Name:               s.name,
			Method:             s.method,
			URL:                s.url,
			ExpectedStatus:     s.status,
			ExpectedContent:    s.content,
			NotExpectedContent: s.notExpected,
			TestAppFactory: func(t testing.TB) *tests.TestApp {
				f = newFixture(t, fixtureOptions{})
				return f.app
			},
			AfterTestFunc: func(t testing.TB, app *tests.TestApp, res *http.Response) {
				if s.after != nil {
					s.after(t, f)
				}
			},
		}
		if s.body != "" {
			sc.Body = strings.NewReader(s.body)
		}
		if s.as != guest {
			sc.Headers = map[string]string{"Authorization": token(t, s.as)}
		}
		sc.Test(t)
	}
}

// siteUnchanged checks that the shared site kept its seeded values.
func siteUnchanged(t testing.TB, f *fixture) {
	t.Helper()
	r, err := f.app.FindRecordById("sites", siteID)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetString("name") != "Example" || r.GetString("owner") != ownerID || !slices.Equal(r.GetStringSlice("members"), []string{memberID}) {
		t.Fatalf("site changed: %v", r.PublicExport())
	}
}

func siteCount(n int) func(t testing.TB, f *fixture) {
	return func(t testing.TB, f *fixture) {
		t.Helper()
		total, err := f.app.CountRecords("sites")
		if err != nil {
			t.Fatal(err)
		}
		if total != int64(n) {
			t.Fatalf("%d sites, want %d", total, n)
		}
	}
}

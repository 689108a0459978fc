package hooks_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// TestSegments: saved filters under the site's rules. Their owner reads and
// edits them; shared ones are read by every reader of the site and removed
// by its owner and admins; filters the analytics API would refuse are a 400.
func TestSegments(t *testing.T) {
	fx := newAnalyticsFixture(t, "sqlite")
	member := map[string]string{"Authorization": token(t, memberID)}
	admin := map[string]string{"Authorization": token(t, adminID)}
	owner := map[string]string{"Authorization": token(t, ownerID)}
	stranger := map[string]string{"Authorization": token(t, strangerID)}
	const (
		list        = "/api/collections/segments/records"
		memberOwn   = "segmember000001" // the member's, personal
		adminShared = "segshared000001" // the admin's, shared
		adminOwn    = "segadmin0000001" // the admin's, personal
	)

	app := func(t testing.TB) *tests.TestApp {
		a := fx.app(t, 0)
		if err := hooks.RegisterSegments(a); err != nil {
			t.Fatal(err)
		}
		c, _ := a.FindCollectionByNameOrId(migrations.SegmentsCollectionId)
		for _, s := range []struct {
			id, name, owner string
			shared          bool
		}{{memberOwn, "Mine", memberID, false}, {adminShared, "Germany", adminID, true}, {adminOwn, "Admin's own", adminID, false}} {
			r := core.NewRecord(c)
			r.Id = s.id
			r.Load(map[string]any{"site": berlinSiteID, "name": s.name, "owner": s.owner, "shared": s.shared,
				"filters": [][]any{{"country", "is", []string{"DE"}}}})
			if err := a.Save(r); err != nil {
				t.Fatal(err)
			}
		}
		return a
	}
	create := func(owner, filters string) *strings.Reader {
		return strings.NewReader(`{"site":"` + berlinSiteID + `","name":"New","owner":"` + owner + `","filters":` + filters + `}`)
	}
	bad := func(msg string) []string {
		return []string{`"status":400`, `"filters":{"code":"validation_segment_filters"`, msg}
	}

	scenarios := []tests.ApiScenario{
		{Name: "a member lists their own and the shared ones", Method: http.MethodGet, URL: list, Headers: member,
			ExpectedStatus: 200, ExpectedContent: []string{`"totalItems":2`, `"id":"` + memberOwn + `"`, `"id":"` + adminShared + `"`}},
		{Name: "a stranger lists none", Method: http.MethodGet, URL: list, Headers: stranger,
			ExpectedStatus: 200, ExpectedContent: []string{`"totalItems":0`}},
		{Name: "another member's personal segment is hidden", Method: http.MethodGet, URL: list + "/" + adminOwn, Headers: member,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},
		{Name: "the site's owner does not see a member's personal one", Method: http.MethodGet, URL: list + "/" + memberOwn, Headers: owner,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},

		{Name: "a member saves a segment", Method: http.MethodPost, URL: list, Headers: member,
			Body:           create(memberID, `[["country","is_not",["DE","FR"]],["page","contains","/blog"],["event_prop:plan","is",["pro"]]]`),
			ExpectedStatus: 200, ExpectedContent: []string{`"owner":"` + memberID + `"`, `"shared":false`}},
		{Name: "not in another user's name", Method: http.MethodPost, URL: list, Headers: member,
			Body: create(adminID, `[["country","is",["DE"]]]`), ExpectedStatus: 400, ExpectedContent: []string{`"status":400`}},
		{Name: "a stranger may not save one on the site", Method: http.MethodPost, URL: list, Headers: stranger,
			Body: create(strangerID, `[["country","is",["DE"]]]`), ExpectedStatus: 400, ExpectedContent: []string{`"status":400`}},
		{Name: "an unknown dimension", Method: http.MethodPost, URL: list, Headers: member,
			Body: create(memberID, `[["colour","is",["red"]]]`), ExpectedStatus: 400, ExpectedContent: bad(`Unknown dimension`)},
		{Name: "an unknown operator", Method: http.MethodPost, URL: list, Headers: member,
			Body: create(memberID, `[["country","like",["D"]]]`), ExpectedStatus: 400, ExpectedContent: bad(`Unknown filter operator`)},
		{Name: "no filter", Method: http.MethodPost, URL: list, Headers: member,
			Body: create(memberID, `[]`), ExpectedStatus: 400, ExpectedContent: []string{`"status":400`, `"filters":{"code":"validation_`}},
		{Name: "filters not a list", Method: http.MethodPost, URL: list, Headers: member,
			Body: create(memberID, `{"country":"DE"}`), ExpectedStatus: 400, ExpectedContent: bad(`Filters must be a list`)},

		{Name: "the owner renames and shares theirs", Method: http.MethodPatch, URL: list + "/" + memberOwn, Headers: member,
			Body: strings.NewReader(`{"name":"Renamed","shared":true}`), ExpectedStatus: 200, ExpectedContent: []string{`"name":"Renamed"`, `"shared":true`}},
		{Name: "bad filters on update", Method: http.MethodPatch, URL: list + "/" + memberOwn, Headers: member,
			Body: strings.NewReader(`{"filters":[["country","is"]]}`), ExpectedStatus: 400, ExpectedContent: bad(`want [dimension, operator, value]`)},
		{Name: "nobody takes over a segment", Method: http.MethodPatch, URL: list + "/" + memberOwn, Headers: member,
			Body: strings.NewReader(`{"owner":"` + adminID + `"}`), ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},
		{Name: "a member may not edit a shared one", Method: http.MethodPatch, URL: list + "/" + adminShared, Headers: member,
			Body: strings.NewReader(`{"name":"Mine now"}`), ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},
		{Name: "nor may the site's owner", Method: http.MethodPatch, URL: list + "/" + adminShared, Headers: owner,
			Body: strings.NewReader(`{"name":"Mine now"}`), ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},

		{Name: "a member may not delete a shared one", Method: http.MethodDelete, URL: list + "/" + adminShared, Headers: member,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},
		{Name: "the site's owner deletes a shared one", Method: http.MethodDelete, URL: list + "/" + adminShared, Headers: owner,
			ExpectedStatus: 204, ExpectedEvents: map[string]int{"OnRecordDelete": 1}},
		{Name: "but not a member's personal one", Method: http.MethodDelete, URL: list + "/" + memberOwn, Headers: admin,
			ExpectedStatus: 404, ExpectedContent: []string{`"status":404`}},
		{Name: "the owner deletes theirs", Method: http.MethodDelete, URL: list + "/" + memberOwn, Headers: member,
			ExpectedStatus: 204, ExpectedEvents: map[string]int{"OnRecordDelete": 1}},
	}
	for _, s := range scenarios {
		s.TestAppFactory = app
		s.Test(t)
	}
}

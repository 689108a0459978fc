package hooks_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// accessServer serves the analytics routes over the sqlite fixture with the
// shares and API keys hooks, as analytics.Register wires them.
func accessServer(t *testing.T) (*analyticsFixture, *tests.TestApp, *httptest.Server) {
	t.Helper()
	fx := newAnalyticsFixture(t, "sqlite")
	app := fx.app(t, 0)
	t.Cleanup(app.Cleanup)
	if err := hooks.RegisterShares(app); err != nil {
		t.Fatal(err)
	}
	if err := hooks.RegisterAPIKeys(app); err != nil {
		t.Fatal(err)
	}
	return fx, app, livetest.Serve(t, app)
}

// call sends a request and returns the response with its body read into it
// (res.Body can be read again).
func call(t *testing.T, srv *httptest.Server, method, path string, headers map[string]string, body any) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(data))
	return res, string(data)
}

func auth(id string, t *testing.T) map[string]string {
	return map[string]string{"Authorization": token(t, id)}
}

func wantStatus(t *testing.T, what string, res *http.Response, body string, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("%s: status %d, want %d: %s", what, res.StatusCode, status, body)
	}
}

func TestShareLinks(t *testing.T) {
	fx, app, srv := accessServer(t)
	owner, member, stranger := auth(ownerID, t), auth(memberID, t), auth(strangerID, t)
	sharesURL := "/api/collections/" + access.SharesCollection + "/records"

	chosen := strings.Repeat("a", 40)
	res, body := call(t, srv, "POST", sharesURL, owner, map[string]any{"site": berlinSiteID, "token": chosen, "label": "client"})
	wantStatus(t, "owner creates a share", res, body, 200)
	var share struct{ Id, Token string }
	json.Unmarshal([]byte(body), &share)
	if len(share.Token) != 40 || share.Token == chosen {
		t.Fatalf("token %q: want 40 random characters set by the server, never the client's", share.Token)
	}

	t.Run("rules", func(t *testing.T) {
		res, body := call(t, srv, "POST", sharesURL, member, map[string]any{"site": berlinSiteID})
		if res.StatusCode < 400 {
			t.Fatalf("a member created a share: %s", body)
		}
		for _, who := range []map[string]string{member, stranger, nil} {
			_, body := call(t, srv, "GET", sharesURL, who, nil)
			if strings.Contains(body, share.Token) {
				t.Fatalf("a non-owner lists the share: %s", body)
			}
		}
		res, body = call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"token": chosen})
		if res.StatusCode < 400 {
			t.Fatalf("the owner chose a token: %s", body)
		}
		res, body = call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"site": siteID})
		if res.StatusCode < 400 {
			t.Fatalf("a share moved to another site: %s", body)
		}
	})

	q := "period=7d&share=" + share.Token
	t.Run("reads its site", func(t *testing.T) {
		u := apiURL(berlinSiteID, "overview", q)
		res, body := call(t, srv, "GET", u, nil, nil)
		wantStatus(t, "overview", res, body, 200)
		fx.expectOverview(berlinSiteID, u)(t, app, res)
		for _, path := range []string{"timeseries", "breakdown/page", "breakdown/country"} {
			res, body := call(t, srv, "GET", apiURL(berlinSiteID, path, q), nil, nil)
			wantStatus(t, path, res, body, 200)
		}
		res, body = call(t, srv, "GET", hooks.SharePath+"/"+share.Token, nil, nil)
		wantStatus(t, "share info", res, body, 200)
		if !strings.Contains(body, `"id":"`+berlinSiteID+`"`) || !strings.Contains(body, `"name":"Berlin"`) || strings.Contains(body, "example.de") {
			t.Fatalf("share info: %s", body)
		}
	})

	t.Run("only its site", func(t *testing.T) {
		for _, site := range []string{siteID, noSiteID} {
			res, body := call(t, srv, "GET", apiURL(site, "overview", q), nil, nil)
			wantStatus(t, "another site", res, body, 404)
		}
		// A share parameter replaces the caller's own access, it never adds to it.
		res, body := call(t, srv, "GET", apiURL(siteID, "overview", q), owner, nil)
		wantStatus(t, "another site, signed in", res, body, 404)
		for _, tok := range []string{strings.Repeat("b", 40), share.Token[:39], ""} {
			res, body := call(t, srv, "GET", apiURL(berlinSiteID, "overview", "share="+tok), nil, nil)
			wantStatus(t, "unknown token "+tok, res, body, 404)
		}
	})

	t.Run("password", func(t *testing.T) {
		res, body := call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"password": "s3cret-pass"})
		wantStatus(t, "set a password", res, body, 200)
		if strings.Contains(body, "s3cret") || strings.Contains(body, "$2a$") {
			t.Fatalf("the password shows: %s", body)
		}
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", q), nil, nil)
		wantStatus(t, "without proof", res, body, 404)
		_, body = call(t, srv, "GET", hooks.SharePath+"/"+share.Token, nil, nil)
		if !strings.Contains(body, `"locked":true`) || strings.Contains(body, "Berlin") {
			t.Fatalf("locked share info: %s", body)
		}
		res, body = call(t, srv, "POST", hooks.SharePath+"/"+share.Token+"/unlock", nil, map[string]string{"password": "wrong"})
		wantStatus(t, "wrong password", res, body, 400)
		res, body = call(t, srv, "POST", hooks.SharePath+"/"+share.Token+"/unlock", nil, map[string]string{"password": "s3cret-pass"})
		wantStatus(t, "right password", res, body, 200)
		var unlocked struct{ Proof string }
		json.Unmarshal([]byte(body), &unlocked)
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", q+"&proof="+url.QueryEscape(unlocked.Proof)), nil, nil)
		wantStatus(t, "with proof", res, body, 200)
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", q+"&proof=x"+url.QueryEscape(unlocked.Proof)), nil, nil)
		wantStatus(t, "with a wrong proof", res, body, 404)

		// A new password voids the old proof.
		call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"password": "other-pass"})
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", q+"&proof="+url.QueryEscape(unlocked.Proof)), nil, nil)
		wantStatus(t, "old proof", res, body, 404)
		call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"password": ""})
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", q), nil, nil)
		wantStatus(t, "password removed", res, body, 200)
	})

	t.Run("expired", func(t *testing.T) {
		past := time.Now().Add(-time.Minute).UTC().Format("2006-01-02 15:04:05.000Z")
		res, body := call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"expires": past})
		wantStatus(t, "expire", res, body, 200)
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", q), nil, nil)
		wantStatus(t, "expired", res, body, 404)
		res, body = call(t, srv, "GET", hooks.SharePath+"/"+share.Token, nil, nil)
		wantStatus(t, "expired info", res, body, 404)
		call(t, srv, "PATCH", sharesURL+"/"+share.Id, owner, map[string]any{"expires": ""})
	})

	t.Run("deleted", func(t *testing.T) {
		res, body := call(t, srv, "GET", apiURL(berlinSiteID, "overview", q), nil, nil)
		wantStatus(t, "before", res, body, 200)
		res, body = call(t, srv, "DELETE", sharesURL+"/"+share.Id, owner, nil)
		wantStatus(t, "delete", res, body, 204)
		for _, path := range []string{"overview", "timeseries", "breakdown/page"} {
			res, body = call(t, srv, "GET", apiURL(berlinSiteID, path, q), nil, nil)
			wantStatus(t, "after deletion "+path, res, body, 404)
		}
	})

	t.Run("public site", func(t *testing.T) {
		res, body := call(t, srv, "GET", hooks.SharePath+"/"+subsSiteID, nil, nil)
		wantStatus(t, "public site", res, body, 200)
		if !strings.Contains(body, `"live":true`) || strings.Contains(body, "shop.example") {
			t.Fatalf("public site info: %s", body)
		}
		res, body = call(t, srv, "GET", hooks.SharePath+"/"+siteID, nil, nil)
		wantStatus(t, "private site by id", res, body, 404)
	})
}

func TestAPIKeys(t *testing.T) {
	fx, app, srv := accessServer(t)
	owner, stranger := auth(ownerID, t), auth(strangerID, t)
	keysURL := "/api/collections/" + access.APIKeysCollection + "/records"

	res, body := call(t, srv, "POST", keysURL, owner, map[string]any{"name": "script", "sites": []string{berlinSiteID}})
	wantStatus(t, "create", res, body, 200)
	var created struct{ Id, Key, Hint, Owner string }
	json.Unmarshal([]byte(body), &created)
	if !strings.HasPrefix(created.Key, access.KeyPrefix) || len(created.Key) < 40 || created.Owner != ownerID ||
		!strings.HasPrefix(created.Key, created.Hint) || strings.Contains(body, `"hash"`) {
		t.Fatalf("create response: %s", body)
	}
	stored, err := app.FindRecordById(access.APIKeysCollection, created.Id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetString("hash") != access.HashKey(created.Key) || strings.Contains(stored.GetString("hash"), created.Key) {
		t.Fatal("the stored hash is not the key's SHA-256")
	}
	_, body = call(t, srv, "GET", keysURL+"/"+created.Id, owner, nil)
	if strings.Contains(body, created.Key) || strings.Contains(body, `"key"`) {
		t.Fatalf("the key is shown again: %s", body)
	}
	_, body = call(t, srv, "GET", keysURL, owner, nil)
	if !strings.Contains(body, created.Id) {
		t.Fatalf("the owner does not list the key: %s", body)
	}
	key := map[string]string{"Authorization": "Bearer " + created.Key}

	t.Run("rules", func(t *testing.T) {
		res, body := call(t, srv, "POST", keysURL, stranger, map[string]any{"name": "x", "sites": []string{berlinSiteID}})
		if res.StatusCode < 400 {
			t.Fatalf("a stranger made a key for another's site: %s", body)
		}
		chosen := strings.Repeat("0", 64)
		res, body = call(t, srv, "POST", keysURL, owner, map[string]any{"name": "x", "sites": []string{berlinSiteID}, "hash": chosen})
		if res.StatusCode == 200 {
			var k struct{ Id string }
			json.Unmarshal([]byte(body), &k)
			if r, err := app.FindRecordById(access.APIKeysCollection, k.Id); err != nil || r.GetString("hash") == chosen {
				t.Fatalf("a client chose the hash: %s", body)
			}
		}
		_, body = call(t, srv, "GET", keysURL, stranger, nil)
		if strings.Contains(body, created.Id) {
			t.Fatalf("a stranger lists the key: %s", body)
		}
	})

	t.Run("reads its site", func(t *testing.T) {
		u := apiURL(berlinSiteID, "overview", "period=7d")
		res, body := call(t, srv, "GET", u, key, nil)
		wantStatus(t, "overview", res, body, 200)
		fx.expectOverview(berlinSiteID, u)(t, app, res)
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "breakdown/page", "period=7d"), key, nil)
		wantStatus(t, "breakdown", res, body, 200)
		r, _ := app.FindRecordById(access.APIKeysCollection, created.Id)
		if r.GetDateTime("lastUsed").IsZero() {
			t.Fatal("lastUsed not set")
		}
	})

	t.Run("refused elsewhere", func(t *testing.T) {
		// siteID is the owner's too, but the key does not list it.
		res, body := call(t, srv, "GET", apiURL(siteID, "overview", "period=7d"), key, nil)
		wantStatus(t, "unlisted site", res, body, 404)
		for _, path := range []string{
			"/api/collections/sites/records/" + berlinSiteID,
			"/api/collections/users/records/" + ownerID,
			keysURL + "/" + created.Id,
		} {
			res, body := call(t, srv, "GET", path, key, nil)
			if res.StatusCode == 200 {
				t.Fatalf("the key opened %s: %s", path, body)
			}
		}
		_, body = call(t, srv, "GET", "/api/collections/sites/records", key, nil)
		if !strings.Contains(body, `"totalItems":0`) {
			t.Fatalf("the key lists sites: %s", body)
		}
	})

	t.Run("owner loses the site", func(t *testing.T) {
		site, _ := app.FindRecordById("sites", siteID)
		res, body := call(t, srv, "POST", keysURL, owner, map[string]any{"name": "y", "sites": []string{siteID}})
		wantStatus(t, "second key", res, body, 200)
		var k struct{ Key string }
		json.Unmarshal([]byte(body), &k)
		site.Set("owner", strangerID)
		if err := app.Save(site); err != nil {
			t.Fatal(err)
		}
		res, body = call(t, srv, "GET", apiURL(siteID, "overview", "period=7d"), map[string]string{"Authorization": "Bearer " + k.Key}, nil)
		wantStatus(t, "key of a former owner", res, body, 404)
	})

	t.Run("deleted", func(t *testing.T) {
		res, body := call(t, srv, "DELETE", keysURL+"/"+created.Id, owner, nil)
		wantStatus(t, "delete", res, body, 204)
		res, body = call(t, srv, "GET", apiURL(berlinSiteID, "overview", "period=7d"), key, nil)
		wantStatus(t, "after deletion", res, body, 404)
	})
}

// TestLiveRouteAccess: the live polling route opens to a share with the
// live flag and to an API key, each for its one site.
func TestLiveRouteAccess(t *testing.T) {
	app := liveApp(t)
	if err := hooks.RegisterShares(app); err != nil {
		t.Fatal(err)
	}
	srv := livetest.Serve(t, app)
	shares, _ := app.FindCollectionByNameOrId(access.SharesCollection)
	newShare := func(live bool) string {
		r := core.NewRecord(shares)
		r.Set("site", livetest.Site)
		r.Set("live", live)
		if err := app.Save(r); err != nil {
			t.Fatal(err)
		}
		return r.GetString("token")
	}
	keys, _ := app.FindCollectionByNameOrId(access.APIKeysCollection)
	key, hash := access.NewKey()
	k := core.NewRecord(keys)
	k.Load(map[string]any{"name": "k", "sites": []string{livetest.Site}, "owner": livetest.UserID(t, app, livetest.Owner), "hash": hash})
	if err := app.Save(k); err != nil {
		t.Fatal(err)
	}
	liveShare, plainShare := newShare(true), newShare(false)
	bearer := map[string]string{"Authorization": "Bearer " + key}

	for _, tc := range []struct {
		name    string
		site    string
		query   string
		headers map[string]string
		status  int
	}{
		{"live share", livetest.Site, "share=" + liveShare, nil, 200},
		{"live share, other site", livetest.Other, "share=" + liveShare, nil, 404},
		{"share without live", livetest.Site, "share=" + plainShare, nil, 404},
		{"API key", livetest.Site, "", bearer, 200},
		{"API key, other site", livetest.Other, "", bearer, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := call(t, srv, "GET", "/api/analytics/sites/"+tc.site+"/live?"+tc.query, tc.headers, nil)
			wantStatus(t, tc.name, res, body, tc.status)
		})
	}
}

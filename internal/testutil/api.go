package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// Call sends a JSON request to the app and decodes a JSON answer into out
// (when out is not nil). It fails the test on a status other than want.
func (a *App) Call(t testing.TB, method, path, token string, body, out any, want int) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// SuperuserToken creates a superuser and returns an auth token for it.
func (a *App) SuperuserToken(t testing.TB) string {
	t.Helper()
	const email, password = "admin@example.com", "admin-password-123"
	a.Superuser(email, password)
	var auth struct {
		Token string `json:"token"`
	}
	a.Call(t, "POST", "/api/collections/_superusers/auth-with-password", "",
		map[string]string{"identity": email, "password": password}, &auth, http.StatusOK)
	return auth.Token
}

// CreateUser creates a users record and returns its id and an auth token.
func (a *App) CreateUser(t testing.TB, email, password string) (id, token string) {
	t.Helper()
	var rec struct {
		ID string `json:"id"`
	}
	a.Call(t, "POST", "/api/collections/users/records", "", map[string]any{
		"email": email, "password": password, "passwordConfirm": password,
	}, &rec, http.StatusOK)
	var auth struct {
		Token string `json:"token"`
	}
	a.Call(t, "POST", "/api/collections/users/auth-with-password", "",
		map[string]string{"identity": email, "password": password}, &auth, http.StatusOK)
	return rec.ID, auth.Token
}

// CreateSite creates a site owned by a new user and returns its id and the
// owner's token.
func (a *App) CreateSite(t testing.TB, domain string) (siteID, ownerToken string) {
	t.Helper()
	_, token := a.CreateUser(t, Unique("owner")+"@example.com", "owner-password-123")
	var site struct {
		ID string `json:"id"`
	}
	a.Call(t, "POST", "/api/collections/sites/records", token, map[string]any{
		"name": "Test " + domain, "domains": []string{domain}, "timezone": "UTC",
	}, &site, http.StatusOK)
	if site.ID == "" {
		t.Fatal(fmt.Errorf("site create returned no id"))
	}
	return site.ID, token
}

package salt_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/internal/salt"
	_ "github.com/pocketlytics/pocketlytics/migrations"
)

func newTestApp(t testing.TB) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

func TestCollectionStore(t *testing.T) {
	testStore(t, func(t *testing.T) salt.Store {
		return salt.NewCollectionStore(newTestApp(t))
	})
}

func TestCollection(t *testing.T) {
	app := newTestApp(t)
	c, err := app.FindCollectionByNameOrId(salt.Collection)
	if err != nil {
		t.Fatal(err)
	}
	if !c.System {
		t.Error("salts is not a system collection")
	}
	for name, rule := range map[string]*string{"list": c.ListRule, "view": c.ViewRule, "create": c.CreateRule, "update": c.UpdateRule, "delete": c.DeleteRule} {
		if rule != nil {
			t.Errorf("%s rule = %q, want nil (superusers only)", name, *rule)
		}
	}
	if f := c.Fields.GetByName("value"); f == nil || !f.GetHidden() {
		t.Error("value field missing or not hidden")
	}

	// Down removes the collection (it is a system one, so that needs care).
	for _, m := range core.AppMigrations.Items() {
		if m.File != "1730000001_salts.go" {
			continue
		}
		if err := m.Down(app); err != nil {
			t.Fatalf("down: %v", err)
		}
		if _, err := app.FindCollectionByNameOrId(salt.Collection); err == nil {
			t.Fatal("salts still exists after down")
		}
		if err := m.Up(app); err != nil {
			t.Fatalf("up again: %v", err)
		}
		return
	}
	t.Fatal("migration 1730000001_salts.go not registered")
}

func TestCollectionRules(t *testing.T) {
	scenarios := []tests.ApiScenario{
		{
			Name:            "guests cannot list salts",
			Method:          http.MethodGet,
			URL:             "/api/collections/salts/records",
			ExpectedStatus:  403,
			ExpectedContent: []string{`"data":{}`},
			TestAppFactory:  withSalt,
		},
		{
			Name:            "guests cannot create salts",
			Method:          http.MethodPost,
			URL:             "/api/collections/salts/records",
			Body:            bytes.NewBufferString(`{"day":"2030-01-01","value":"` + string(bytes.Repeat([]byte("a"), 64)) + `"}`),
			ExpectedStatus:  403,
			ExpectedContent: []string{`"data":{}`},
			TestAppFactory:  withSalt,
		},
	}
	for _, s := range scenarios {
		s.Test(t)
	}
}

func withSalt(t testing.TB) *tests.TestApp {
	app := newTestApp(t)
	if err := salt.NewRing(salt.NewCollectionStore(app)).Rotate(context.Background(), day2); err != nil {
		t.Fatal(err)
	}
	return app
}

func TestRegister(t *testing.T) {
	var ring *salt.Ring
	(&tests.ApiScenario{
		Name:            "salts load when the app serves",
		Method:          http.MethodGet,
		URL:             "/api/health",
		ExpectedStatus:  200,
		ExpectedContent: []string{`"code":200`},
		TestAppFactory: func(t testing.TB) *tests.TestApp {
			app := newTestApp(t)
			var err error
			if ring, err = salt.Register(app, nil); err != nil {
				t.Fatal(err)
			}
			if ring.Salts(time.Now()) != nil {
				t.Fatal("salts loaded before the app served")
			}
			return app
		},
		AfterTestFunc: func(t testing.TB, app *tests.TestApp, res *http.Response) {
			now := time.Now()
			s := ring.Salts(now)
			if s == nil || s.Day != salt.Day(now) {
				t.Fatalf("salts after serve = %+v", s)
			}
			rec, err := app.FindFirstRecordByData(salt.Collection, "day", s.Day)
			if err != nil {
				t.Fatalf("today's salt not stored: %v", err)
			}
			if rec.GetString("value") != hex.EncodeToString(s.Today) {
				t.Fatal("stored salt differs from the ring's")
			}
			var ids []string
			for _, j := range app.Cron().Jobs() {
				ids = append(ids, j.Id())
			}
			for _, id := range []string{salt.CronRotate, salt.CronCheck} {
				if !slices.Contains(ids, id) {
					t.Errorf("cron job %s not registered (have %v)", id, ids)
				}
			}
		},
	}).Test(t)
}

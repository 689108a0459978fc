package analytics

import (
	"errors"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// newHostApp is a bootstrapped app with PocketBase's own collections and,
// when host is set, a collection of the host's called host.
func newHostApp(t *testing.T, host string) core.App {
	t.Helper()
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: t.TempDir()})
	if err := app.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.ResetBootstrapState() })
	if _, err := core.NewMigrationsRunner(app, core.SystemMigrations).Up(); err != nil {
		t.Fatal(err)
	}
	if host != "" {
		c := core.NewBaseCollection(host)
		c.Fields.Add(&core.TextField{Name: "url"})
		if err := app.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	return app
}

func TestCollectionNames(t *testing.T) {
	t.Run("a host collection of the same name is an error naming the setting", func(t *testing.T) {
		app := newHostApp(t, "sites")
		migrations.SetNames(app, migrations.Names{})
		_, err := core.NewMigrationsRunner(app, core.AppMigrations).Up()
		if err == nil || !strings.Contains(err.Error(), "SitesCollection") {
			t.Fatalf("err = %v, want one naming SitesCollection", err)
		}
		c, _ := app.FindCollectionByNameOrId("sites")
		if c == nil || c.Fields.GetByName("domains") != nil {
			t.Fatal("the host's collection was changed")
		}
	})

	t.Run("renamed, both live side by side", func(t *testing.T) {
		app := newHostApp(t, "sites")
		migrations.SetNames(app, migrations.Names{Sites: "analytics_sites", Salts: "analytics_salts"})
		if _, err := core.NewMigrationsRunner(app, core.AppMigrations).Up(); err != nil {
			t.Fatal(err)
		}
		for id, name := range map[string]string{
			migrations.SitesCollectionId: "analytics_sites",
			migrations.SaltsCollectionId: "analytics_salts",
		} {
			c, err := app.FindCollectionByNameOrId(id)
			if err != nil || c.Name != name {
				t.Fatalf("collection %s: %v, %v", id, c, err)
			}
		}
		if err := checkCollections(app, Config{SitesCollection: "analytics_sites", SaltsCollection: "analytics_salts"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRegisterTwice(t *testing.T) {
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	if err := Register(app, Config{NoGeoIPDownload: true}); err != nil {
		t.Fatal(err)
	}
	if err := Register(app, Config{}); err == nil {
		t.Fatal("a second Register must fail")
	}
}

func TestOnHit(t *testing.T) {
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	run := onHit(app) // bound before the handlers, as Register does
	re := &core.RequestEvent{App: app}

	if keep, err := run(re, &event.Event{Pathname: "/a"}); !keep || err != nil {
		t.Fatalf("without handlers: keep %v, err %v", keep, err)
	}

	OnHit(app).BindFunc(func(e *HitEvent) error {
		switch {
		case e.Hit.Pathname == "/fail":
			return errors.New("refused")
		case strings.HasPrefix(e.Hit.Pathname, "/admin/"):
			return nil // dropped
		}
		e.Hit.Pathname = strings.TrimSuffix(e.Hit.Pathname, "/")
		return e.Next()
	})
	for _, tc := range []struct {
		path, want string
		keep, err  bool
	}{
		{"/docs/", "/docs", true, false},
		{"/admin/users", "/admin/users", false, false},
		{"/fail", "/fail", false, true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ev := &event.Event{Pathname: tc.path}
			keep, err := run(re, ev)
			if keep != tc.keep || (err != nil) != tc.err || ev.Pathname != tc.want {
				t.Fatalf("keep %v err %v path %q; want keep %v err %v path %q", keep, err, ev.Pathname, tc.keep, tc.err, tc.want)
			}
		})
	}
}

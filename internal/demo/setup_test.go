package demo

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/types"
)

// serve runs a PocketBase test app over real HTTP, with a sites collection
// shaped like the app's migration.
func serve(t *testing.T, withUsers bool) (*tests.TestApp, string) {
	t.Helper()
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	if !withUsers {
		if _, err := app.DB().NewQuery("DELETE FROM users").Execute(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.FindCollectionByNameOrId("sites"); err != nil {
		sites := core.NewBaseCollection("sites")
		rule := types.Pointer(`owner = @request.auth.id`)
		sites.ListRule, sites.ViewRule = rule, rule
		sites.Fields.Add(
			&core.TextField{Name: "name", Required: true},
			&core.JSONField{Name: "domains"},
			&core.TextField{Name: "timezone"},
			&core.RelationField{Name: "owner", CollectionId: users.Id, Required: true, MaxSelect: 1},
		)
		if err := app.Save(sites); err != nil {
			t.Fatal(err)
		}
	}

	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	err = app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
		mux, err := e.Router.BuildMux()
		if err != nil {
			return err
		}
		srv = httptest.NewServer(mux)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return app, srv.URL
}

func TestSetup(t *testing.T) {
	for _, withUsers := range []bool{true, false} {
		name := map[bool]string{true: "first user owns the site", false: "a demo user is created"}[withUsers]
		t.Run(name, func(t *testing.T) {
			app, base := serve(t, withUsers)
			token, err := localSuperuserToken(app)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := &setup{base: base, token: token, client: http.DefaultClient, log: io.Discard}

			if err := s.trustForwardedFor(ctx); err != nil {
				t.Fatal(err)
			}
			// The server's own settings (what it uses for client IPs) changed.
			if !slices.Contains(app.Settings().TrustedProxy.Headers, "X-Forwarded-For") {
				t.Errorf("trusted proxy headers: %v", app.Settings().TrustedProxy.Headers)
			}
			if err := s.trustForwardedFor(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(app.Settings().TrustedProxy.Headers); n != 1 {
				t.Errorf("header added twice: %v", app.Settings().TrustedProxy.Headers)
			}

			id, err := s.site(ctx)
			if err != nil {
				t.Fatal(err)
			}
			again, err := s.site(ctx)
			if err != nil || again != id {
				t.Fatalf("second run: %q, %v; want the same site %q", again, err, id)
			}
			site, err := app.FindRecordById("sites", id)
			if err != nil {
				t.Fatal(err)
			}
			owner, err := app.FindRecordById("users", site.GetString("owner"))
			if err != nil {
				t.Fatal(err)
			}
			wantDemo := !withUsers
			if got := owner.Email() == "demo@"+Domain; got != wantDemo {
				t.Errorf("owner %s, want demo user: %v", owner.Email(), wantDemo)
			}
			if domains := site.GetString("domains"); domains != `["`+Domain+`"]` {
				t.Errorf("domains %s", domains)
			}
		})
	}
}

func TestLocalSuperuserTokenNeedsASuperuser(t *testing.T) {
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	if _, err := app.DB().NewQuery("DELETE FROM " + core.CollectionNameSuperusers).Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := localSuperuserToken(app); err == nil {
		t.Fatal("want an error without a superuser")
	}
}

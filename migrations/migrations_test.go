package migrations_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/migrations"
)

func TestSitesCollection(t *testing.T) {
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()

	sites, err := app.FindCollectionByNameOrId("sites")
	if err != nil {
		t.Fatal(err)
	}
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("fields", func(t *testing.T) {
		for name, typ := range map[string]string{
			"name": core.FieldTypeText, "domains": core.FieldTypeJSON, "allow_subdomains": core.FieldTypeBool,
			"owner": core.FieldTypeRelation, "members": core.FieldTypeRelation, "public": core.FieldTypeBool,
			"timezone": core.FieldTypeText, "created": core.FieldTypeAutodate, "updated": core.FieldTypeAutodate,
		} {
			f := sites.Fields.GetByName(name)
			if f == nil || f.Type() != typ {
				t.Errorf("field %s: got %v, want type %s", name, f, typ)
			}
		}
		owner, _ := sites.Fields.GetByName("owner").(*core.RelationField)
		if owner == nil || owner.CollectionId != users.Id || !owner.Required || !owner.CascadeDelete || owner.IsMultiple() {
			t.Errorf("owner: got %+v, want a required single relation to users with cascade delete", owner)
		}
		members, _ := sites.Fields.GetByName("members").(*core.RelationField)
		if members == nil || members.CollectionId != users.Id || !members.IsMultiple() || members.CascadeDelete {
			t.Errorf("members: got %+v, want a multiple relation to users", members)
		}
	})

	t.Run("rules", func(t *testing.T) {
		for name, rule := range map[string]*string{
			"list": sites.ListRule, "view": sites.ViewRule, "create": sites.CreateRule,
			"update": sites.UpdateRule, "delete": sites.DeleteRule,
		} {
			if rule == nil || *rule == "" {
				t.Errorf("%s rule is %v: want a rule (nil = superusers only, \"\" = everyone)", name, rule)
			}
		}
	})

	t.Run("users untouched", func(t *testing.T) {
		const ownerRule = "id = @request.auth.id"
		for name, rule := range map[string]*string{
			"list": users.ListRule, "view": users.ViewRule, "update": users.UpdateRule, "delete": users.DeleteRule,
		} {
			if rule == nil || *rule != ownerRule {
				t.Errorf("users %s rule changed: %v", name, rule)
			}
		}
		if users.CreateRule == nil || *users.CreateRule != "" {
			t.Errorf("users create rule changed: %v", users.CreateRule)
		}
	})

	t.Run("down", func(t *testing.T) {
		// The later steps (reports and alerts; segments; invitations, roles;
		// goals and funnels; shares, api_keys, embed_origins) go first.
		if _, err := core.NewMigrationsRunner(app, core.AppMigrations).Down(9); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"sites", "shares", "api_keys", "goals", "funnels", "invitations", "segments", "reports", "alerts"} {
			if _, err := app.FindCollectionByNameOrId(name); err == nil {
				t.Fatalf("%s still exists after migrating down", name)
			}
		}
	})
}

// TestRolesDown checks that migrating the roles down keeps everyone on
// their sites: admins become members.
func TestRolesDown(t *testing.T) {
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()

	users, _ := app.FindCollectionByNameOrId("users")
	var ids []string
	for _, email := range []string{"owner@example.com", "admin@example.com", "member@example.com"} {
		u := core.NewRecord(users)
		u.SetEmail(email)
		u.SetPassword("password-123")
		if err := app.Save(u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.Id)
	}
	sites, _ := app.FindCollectionByNameOrId("sites")
	site := core.NewRecord(sites)
	site.Load(map[string]any{"name": "S", "domains": []string{"s.example"}, "owner": ids[0], "admins": ids[1:2], "members": ids[2:]})
	if err := app.Save(site); err != nil {
		t.Fatal(err)
	}

	// Reports and alerts, segments, invitations, then roles.
	if _, err := core.NewMigrationsRunner(app, core.AppMigrations).Down(4); err != nil {
		t.Fatal(err)
	}
	site, err = app.FindRecordById("sites", site.Id)
	if err != nil {
		t.Fatal(err)
	}
	if got := site.GetStringSlice("members"); len(got) != 2 || !slices.Contains(got, ids[1]) || !slices.Contains(got, ids[2]) {
		t.Fatalf("members after down: %v, want the admin and the member", got)
	}
	sites, _ = app.FindCollectionByNameOrId("sites")
	if sites.Fields.GetByName("admins") != nil || strings.Contains(*sites.ViewRule, "admins") {
		t.Fatalf("admins field or rule left after down: %s", *sites.ViewRule)
	}
	goals, _ := app.FindCollectionByNameOrId("goals")
	if strings.Contains(*goals.CreateRule, "admins") {
		t.Fatalf("goals rule left after down: %s", *goals.CreateRule)
	}
	if _, err := core.NewMigrationsRunner(app, core.AppMigrations).Up(); err != nil {
		t.Fatal(err)
	}
}

func TestAccessCollections(t *testing.T) {
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()

	for _, tc := range []struct {
		id, name string
		secret   string // a field never in API responses
		unique   string // an index that must be unique
		noUpdate bool   // records are never edited through the API
	}{
		{migrations.SharesCollectionId, "shares", "password", "idx_shares_token", false},
		{migrations.APIKeysCollectionId, "api_keys", "hash", "idx_api_keys_hash", false},
		{migrations.InvitationsCollectionId, "invitations", "tokenHash", "idx_invitations_token", true},
	} {
		c, err := app.FindCollectionByNameOrId(tc.id)
		if err != nil || c.Name != tc.name {
			t.Fatalf("collection %s: %v", tc.id, err)
		}
		for name, rule := range map[string]*string{
			"list": c.ListRule, "view": c.ViewRule, "create": c.CreateRule, "update": c.UpdateRule, "delete": c.DeleteRule,
		} {
			if name == "update" && tc.noUpdate {
				if rule != nil {
					t.Errorf("%s update rule is %q, want none (superusers only)", tc.name, *rule)
				}
				continue
			}
			if rule == nil || *rule == "" || !strings.Contains(*rule, "@request.auth.id") {
				t.Errorf("%s %s rule is %v: want a rule on the signed-in user", tc.name, name, rule)
			}
		}
		if f := c.Fields.GetByName(tc.secret); f == nil || !f.GetHidden() && f.Type() != core.FieldTypePassword {
			t.Errorf("%s.%s must be hidden or a password field", tc.name, tc.secret)
		}
		if idx := c.GetIndex(tc.unique); !strings.Contains(idx, "UNIQUE") {
			t.Errorf("%s: index %s = %q, want unique", tc.name, tc.unique, idx)
		}
	}
}

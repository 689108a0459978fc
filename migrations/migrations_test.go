package migrations_test

import (
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
		// The later steps (goals and funnels; shares, api_keys, embed_origins) go first.
		if _, err := core.NewMigrationsRunner(app, core.AppMigrations).Down(5); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"sites", "shares", "api_keys", "goals", "funnels"} {
			if _, err := app.FindCollectionByNameOrId(name); err == nil {
				t.Fatalf("%s still exists after migrating down", name)
			}
		}
	})
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
	}{
		{migrations.SharesCollectionId, "shares", "password", "idx_shares_token"},
		{migrations.APIKeysCollectionId, "api_keys", "hash", "idx_api_keys_hash"},
	} {
		c, err := app.FindCollectionByNameOrId(tc.id)
		if err != nil || c.Name != tc.name {
			t.Fatalf("collection %s: %v", tc.id, err)
		}
		for name, rule := range map[string]*string{
			"list": c.ListRule, "view": c.ViewRule, "create": c.CreateRule, "update": c.UpdateRule, "delete": c.DeleteRule,
		} {
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

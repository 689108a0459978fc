package migrations

import (
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Roles on a site: its owner, admins (settings, goals, funnels, shares,
// members and invitations) and members (read). They are the site's fields
// owner, admins and members; a user holds one role at most
// (hooks.RegisterSites keeps the lists apart).
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// siteRole returns the rule that admits the signed-in user holding one of
// fields (owner, admins, members) on the site at path: "" in the sites
// collection, "site." in a record of a site, "@request.body.site." for the
// site a request names. Every rule on a site's objects is built here, and
// the analytics and live routes use the sites view rule, so who may do
// what is defined once.
func siteRole(path string, fields ...string) string {
	terms := make([]string, len(fields))
	for i, f := range fields {
		if f == "owner" {
			terms[i] = path + "owner = @request.auth.id"
		} else {
			terms[i] = path + f + ".id ?= @request.auth.id"
		}
	}
	return `@request.auth.id != "" && (` + strings.Join(terms, " || ") + `)`
}

var (
	siteReaders = siteRole("", "owner", "admins", "members")
	siteAdmins  = siteRole("", "owner", "admins")
	objReaders  = siteRole("site.", "owner", "admins", "members")
	objAdmins   = siteRole("site.", "owner", "admins")
	bodyAdmins  = siteRole("@request.body.site.", "owner", "admins")

	// Admins change the settings and remove members; the owner alone
	// changes roles and hands the site over (hooks.RegisterSites checks
	// that nobody joins without an invitation).
	rolesSitesUpdate = `@request.auth.id != "" && (owner = @request.auth.id || ` +
		`(admins.id ?= @request.auth.id && @request.body.owner:changed = false && @request.body.admins:changed = false))`

	rolesSharesUpdate = objAdmins + ` && @request.body.site:isset = false && @request.body.token:isset = false`

	rolesConvRead   = objReaders + ` || site.public = true`
	rolesConvUpdate = objAdmins + ` && (@request.body.site:isset = false || ` + bodyAdmins + `)`
)

func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		sites, err := app.FindCollectionByNameOrId(SitesCollectionId)
		if err != nil {
			return err
		}
		at := slices.IndexFunc(sites.Fields, func(f core.Field) bool { return f.GetName() == "members" })
		sites.Fields.AddAt(at, &core.RelationField{
			Name:         "admins",
			CollectionId: users.Id,
			MaxSelect:    100,
			Help:         "Users who manage the site with the owner; they join by invitation.",
		})
		if f, ok := sites.Fields.GetByName("members").(*core.RelationField); ok {
			f.Help = "Users who read the site's statistics; they join by invitation."
		}
		sites.ListRule = types.Pointer(siteReaders)
		sites.ViewRule = types.Pointer(siteReaders)
		sites.UpdateRule = types.Pointer(rolesSitesUpdate)
		if err := app.Save(sites); err != nil {
			return err
		}
		return setRules(app, map[string][5]string{
			SharesCollectionId:  {objAdmins, objAdmins, objAdmins, rolesSharesUpdate, objAdmins},
			GoalsCollectionId:   {rolesConvRead, rolesConvRead, bodyAdmins, rolesConvUpdate, objAdmins},
			FunnelsCollectionId: {rolesConvRead, rolesConvRead, bodyAdmins, rolesConvUpdate, objAdmins},
		})
	}, func(app core.App) error {
		// Admins become members: nobody loses the site.
		sites, err := app.FindAllRecords(SitesCollectionId)
		if err != nil {
			return err
		}
		for _, s := range sites {
			admins := s.GetStringSlice("admins")
			if len(admins) == 0 {
				continue
			}
			members := s.GetStringSlice("members")
			for _, id := range admins {
				if !slices.Contains(members, id) {
					members = append(members, id)
				}
			}
			s.Set("members", members)
			if err := app.SaveNoValidate(s); err != nil {
				return err
			}
		}
		c, err := app.FindCollectionByNameOrId(SitesCollectionId)
		if err != nil {
			return err
		}
		c.Fields.RemoveByName("admins")
		c.ListRule = types.Pointer(sitesReadRule)
		c.ViewRule = types.Pointer(sitesReadRule)
		c.UpdateRule = types.Pointer(sitesUpdateRule)
		if err := app.Save(c); err != nil {
			return err
		}
		return setRules(app, map[string][5]string{
			SharesCollectionId:  {siteManagers, siteManagers, siteManagers, sharesUpdateRule, siteManagers},
			GoalsCollectionId:   {convReadRule, convReadRule, convCreateRule, convWriteRule, convDeleteRule},
			FunnelsCollectionId: {convReadRule, convReadRule, convCreateRule, convWriteRule, convDeleteRule},
		})
	})
}

// setRules sets the list, view, create, update and delete rules of each
// collection.
func setRules(app core.App, rules map[string][5]string) error {
	for id, r := range rules {
		c, err := app.FindCollectionByNameOrId(id)
		if err != nil {
			return err
		}
		c.ListRule, c.ViewRule, c.CreateRule = types.Pointer(r[0]), types.Pointer(r[1]), types.Pointer(r[2])
		c.UpdateRule, c.DeleteRule = types.Pointer(r[3]), types.Pointer(r[4])
		if err := app.Save(c); err != nil {
			return err
		}
	}
	return nil
}

package hooks

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// RegisterSites binds the hooks that belong to the sites collection (created
// by the migrations package):
//
//   - on every save, domains are normalized (lower case, punycode) and must
//     be bare host names, at least one; timezone must be an IANA name and
//     defaults to UTC;
//   - on create through the API, owner is the signed-in user, whatever the
//     body says, unless a superuser creates the site;
//   - through the API, nobody is made an admin or a member by another
//     user: they join by invitation (see RegisterInvitations), which only
//     superusers may bypass. Admins may remove members; the owner may also
//     remove admins, move people between admins and members (listing a user
//     in the other list moves them) and hand the site over to an admin or
//     member, after which the old owner is an admin.
func RegisterSites(app core.App) error {
	app.OnRecordValidate(sitecache.Collection).BindFunc(func(e *core.RecordEvent) error {
		if err := normalizeSite(e.Record); err != nil {
			return err
		}
		return e.Next()
	})

	app.OnRecordCreateRequest(sitecache.Collection).BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Auth != nil && !e.HasSuperuserAuth() {
			e.Record.Set("owner", e.Auth.Id)
			if len(e.Record.GetStringSlice("admins"))+len(e.Record.GetStringSlice("members")) > 0 {
				return e.BadRequestError("", errNeedConsent("members"))
			}
		}
		return e.Next()
	})

	app.OnRecordUpdateRequest(sitecache.Collection).BindFunc(func(e *core.RecordRequestEvent) error {
		byOwner := e.Auth != nil && e.Auth.Id == e.Record.Original().GetString("owner")
		if err := changeRoles(e.Record, e.Record.Original(), byOwner, e.HasSuperuserAuth()); err != nil {
			return e.BadRequestError("", err)
		}
		return e.Next()
	})

	return nil
}

// within refuses ids of field that are not in team.
func within(team []string, field string, ids []string) error {
	for _, id := range ids {
		if !slices.Contains(team, id) {
			return errNeedConsent(field)
		}
	}
	return nil
}

func errNeedConsent(field string) error {
	return validation.Errors{field: validation.NewError("validation_members_need_consent",
		"Users cannot be added to a site by others; they join by invitation.")}
}

// changeRoles checks an update of the site's owner, admins and members
// against before and settles who holds which role: the owner (byOwner)
// moves people, an admin only removes members (the sites update rule keeps
// them from owner and admins).
func changeRoles(r, before *core.Record, byOwner, superuser bool) error {
	oldOwner, owner := before.GetString("owner"), r.GetString("owner")
	wasAdmins, wasMembers := before.GetStringSlice("admins"), before.GetStringSlice("members")
	admins, members := r.GetStringSlice("admins"), r.GetStringSlice("members")
	if owner != oldOwner {
		admins = append(admins, oldOwner)
	}
	switch {
	case superuser:
	case byOwner:
		team := slices.Concat(wasAdmins, wasMembers, []string{oldOwner})
		if !slices.Contains(team, owner) {
			return errNeedConsent("owner")
		}
		if err := within(team, "admins", admins); err != nil {
			return err
		}
		if err := within(team, "members", members); err != nil {
			return err
		}
	default:
		if err := within(wasMembers, "members", members); err != nil {
			return err
		}
	}
	// One role each: a user in both lists was just moved into the one they
	// were not in; the owner is in neither.
	admins = slices.DeleteFunc(admins, func(id string) bool {
		return id == owner || slices.Contains(members, id) && slices.Contains(wasAdmins, id)
	})
	members = slices.DeleteFunc(members, func(id string) bool {
		return id == owner || slices.Contains(admins, id)
	})
	r.Set("admins", admins)
	r.Set("members", members)
	return nil
}

// normalizeSite rewrites domains and timezone into their stored form, or
// returns the field errors in PocketBase's validation shape.
func normalizeSite(r *core.Record) error {
	errs := validation.Errors{}

	domains, err := normalizeDomains(r.GetString("domains"))
	if err != nil {
		errs["domains"] = err
	} else {
		r.Set("domains", domains)
	}

	if origins, err := normalizeOrigins(r.GetString("embed_origins")); err != nil {
		errs["embed_origins"] = err
	} else {
		r.Set("embed_origins", origins)
	}

	tz := r.GetString("timezone")
	if tz == "" {
		tz = "UTC"
		r.Set("timezone", tz)
	}
	// "Local" would mean the server's zone, which is not the owner's.
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		errs["timezone"] = validation.NewError("validation_invalid_timezone",
			fmt.Sprintf("%q is not an IANA time zone name such as Europe/Berlin or UTC.", tz))
	}

	if len(errs) > 0 {
		return errs
	}
	return nil
}

func normalizeDomains(raw string) ([]string, error) {
	var list []any
	if raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return nil, validation.NewError("validation_invalid_domains",
				`Domains must be a list of host names, e.g. ["example.com"].`)
		}
	}
	if len(list) == 0 {
		return nil, validation.NewError("validation_required", "List at least one domain, e.g. example.com.")
	}
	if len(list) > sitecache.MaxDomains {
		return nil, validation.NewError("validation_too_many_domains",
			fmt.Sprintf("List at most %d domains.", sitecache.MaxDomains))
	}

	out := make([]string, 0, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, validation.NewError("validation_invalid_domain",
				fmt.Sprintf("Domain %d is not a string.", i+1))
		}
		d, err := sitecache.NormalizeDomain(s)
		if err != nil {
			return nil, validation.NewError("validation_invalid_domain",
				fmt.Sprintf("Domain %q: %v.", s, err))
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// siteLocation is the site's time zone, UTC when unknown.
func siteLocation(site *core.Record) *time.Location {
	if loc, err := time.LoadLocation(site.GetString("timezone")); err == nil {
		return loc
	}
	return time.UTC
}

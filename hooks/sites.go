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
//   - through the API, only superusers add members: a user cannot impose a
//     site on another (members join by invitation); removing one is allowed.
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
			if err := noNewMembers(e.Record, nil); err != nil {
				return e.BadRequestError("", err)
			}
		}
		return e.Next()
	})

	app.OnRecordUpdateRequest(sitecache.Collection).BindFunc(func(e *core.RecordRequestEvent) error {
		if !e.HasSuperuserAuth() {
			if err := noNewMembers(e.Record, e.Record.Original().GetStringSlice("members")); err != nil {
				return e.BadRequestError("", err)
			}
		}
		return e.Next()
	})

	return nil
}

// noNewMembers refuses members of r that were not members before: a user
// becomes a member by consent (an invitation they accept), never because
// another user listed them. Removing members stays allowed.
func noNewMembers(r *core.Record, before []string) error {
	for _, id := range r.GetStringSlice("members") {
		if !slices.Contains(before, id) {
			return validation.Errors{"members": validation.NewError("validation_members_need_consent",
				"Users cannot be added as members by others; they join by invitation.")}
		}
	}
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

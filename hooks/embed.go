package hooks

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// maxEmbedOrigins bounds a site's embed origins (they go into a header).
const maxEmbedOrigins = 20

// normalizeOrigins rewrites a site's embed_origins into "scheme://host[:port]"
// strings, the only form frame-ancestors takes from us: anything else could
// smuggle a directive into the header.
func normalizeOrigins(raw string) ([]string, error) {
	var list []string
	if raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return nil, validation.NewError("validation_invalid_origins", `Embed origins must be a list, e.g. ["https://status.example.com"].`)
		}
	}
	if len(list) > maxEmbedOrigins {
		return nil, validation.NewError("validation_too_many_origins", fmt.Sprintf("List at most %d origins.", maxEmbedOrigins))
	}
	out := []string{}
	for _, s := range list {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(u.Host, " ;,'\"") {
			return nil, validation.NewError("validation_invalid_origin",
				fmt.Sprintf("%q is not an origin such as https://status.example.com.", s))
		}
		o := u.Scheme + "://" + strings.ToLower(u.Host)
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// frameAncestors is the frame-ancestors source list of a dashboard page:
// the embed origins of the site a share page (share/{token}[/live], or a
// public site's share/{siteId}) opens, 'none' for every other page.
func frameAncestors(app core.App, page string) string {
	rest, ok := strings.CutPrefix(page, "share/")
	if !ok {
		return "'none'"
	}
	ref, _, _ := strings.Cut(rest, "/")
	var site *core.Record
	if share, err := access.FindShare(app, ref); err == nil {
		site, _ = app.FindRecordById(sitecache.Collection, share.GetString("site"))
	} else if r, err := app.FindRecordById(sitecache.Collection, ref); err == nil && r.GetBool("public") {
		site = r
	}
	if site == nil {
		return "'none'"
	}
	var origins []string
	json.Unmarshal([]byte(site.GetString("embed_origins")), &origins)
	if len(origins) == 0 {
		return "'none'"
	}
	return strings.Join(origins, " ")
}

package hooks

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/goals"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// RegisterConversions binds the value rules of the goals and funnels
// collections (created by the migrations package): a goal is either an
// event (with optional property matches) or a page pattern; a funnel has 2
// to 8 such steps. A record that breaks them is refused with a 400 naming
// the field.
func RegisterConversions(app core.App) error {
	app.OnRecordValidate(migrations.GoalsCollectionId).BindFunc(func(e *core.RecordEvent) error {
		g, err := goals.FromRecord(e.Record)
		if err == nil {
			err = g.Validate()
		}
		if err != nil {
			return validation.Errors{"event": validation.NewError("validation_goal", reason(err))}
		}
		return e.Next()
	})
	app.OnRecordValidate(migrations.FunnelsCollectionId).BindFunc(func(e *core.RecordEvent) error {
		steps, err := funnelSteps(e.Record)
		if err == nil {
			err = store.ValidateSteps(steps)
		}
		if err != nil {
			return validation.Errors{"steps": validation.NewError("validation_funnel_steps", reason(err))}
		}
		return e.Next()
	})
	return nil
}

func reason(err error) string {
	msg := strings.TrimPrefix(err.Error(), store.ErrInvalidQuery.Error()+": ")
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// funnelSteps reads a funnels record's steps: objects with page or event
// (and props) only.
func funnelSteps(r *core.Record) ([]store.Goal, error) {
	var steps []store.Goal
	dec := json.NewDecoder(strings.NewReader(r.GetString("steps")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&steps); err != nil {
		return nil, validation.NewError("validation_funnel_steps", `steps must be a list like [{"page": "/pricing"}, {"event": "signup"}]`)
	}
	for i := range steps {
		steps[i].Name = ""
	}
	return steps, nil
}

// needsGoals reports whether a request reads the site's goals.
func needsGoals(q store.Query, dim string) bool {
	if dim == string(store.DimGoal) {
		return true
	}
	for _, f := range q.Filters {
		if f.Dimension == store.DimGoal {
			return true
		}
	}
	return false
}

// funnels answers GET /api/analytics/sites/{siteId}/funnels: the site's
// funnels (id, name, steps) by name, for whoever may read its statistics.
// A share link reads them here: the funnels collection's rules know
// accounts only.
func (h *analyticsAPI) funnels(e *core.RequestEvent) error {
	site, err := h.site(e)
	if err != nil {
		return err
	}
	records, err := e.App.FindRecordsByFilter(migrations.FunnelsCollectionId, "site = {:site}", "name", 0, 0, dbx.Params{"site": site.ID})
	if err != nil {
		return e.InternalServerError("", err)
	}
	type funnelJSON struct {
		ID    string       `json:"id"`
		Name  string       `json:"name"`
		Steps []store.Goal `json:"steps"`
	}
	items := make([]funnelJSON, 0, len(records))
	for _, r := range records {
		steps, err := funnelSteps(r)
		if err != nil {
			continue // refused on save; skip rather than fail the list
		}
		items = append(items, funnelJSON{r.Id, r.GetString("name"), steps})
	}
	return e.JSON(http.StatusOK, struct {
		Items []funnelJSON `json:"items"`
	}{items})
}

// funnel answers GET /api/analytics/sites/{siteId}/funnels/{funnelId}: the
// funnel must belong to the site, which the caller may read.
func (h *analyticsAPI) funnel(e *core.RequestEvent) error {
	p, loc, err := h.request(e)
	if err != nil {
		return err
	}
	record, err := e.App.FindRecordById(migrations.FunnelsCollectionId, e.Request.PathValue("funnelId"))
	if err != nil || record.GetString("site") != p.Query.SiteID {
		return e.NotFoundError("", nil)
	}
	steps, err := funnelSteps(record)
	if err != nil {
		return e.BadRequestError(reason(err), nil)
	}
	ctx, release, err := h.acquire(e)
	if err != nil {
		return err
	}
	defer release()
	out, err := h.cfg.Store.Funnel(ctx, p.Query, steps)
	if err != nil {
		return storeError(e, err)
	}
	return e.JSON(http.StatusOK, struct {
		Range rangeJSON          `json:"range"`
		ID    string             `json:"id"`
		Name  string             `json:"name"`
		Steps []store.FunnelStep `json:"steps"`
	}{newRange(p, loc, ""), record.Id, record.GetString("name"), out})
}

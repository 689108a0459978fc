// Package goals reads a site's goals from the goals collection (created by
// the migrations package) as the store's query engine takes them, for the
// analytics routes and the live layer alike.
package goals

import (
	"encoding/json"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// FromRecord reads a goals record. Its props must be an object of strings.
func FromRecord(r *core.Record) (store.Goal, error) {
	g := store.Goal{Name: r.GetString("name"), Event: r.GetString("event"), Page: r.GetString("page")}
	if raw := r.GetString("props"); raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &g.Props); err != nil {
			return g, validation.NewError("validation_goal_props", "props must be an object of strings")
		}
	}
	return g, nil
}

// Site returns the goals of a site, never nil. A record that cannot be read
// (refused on save, so only written around the rules) is left out rather
// than failing every query.
func Site(app core.App, siteID string) ([]store.Goal, error) {
	records, err := app.FindAllRecords(migrations.GoalsCollectionId, dbx.HashExp{"site": siteID})
	if err != nil {
		return nil, err
	}
	goals := make([]store.Goal, 0, len(records))
	for _, r := range records {
		if g, err := FromRecord(r); err == nil {
			goals = append(goals, g)
		}
	}
	return goals, nil
}

package realtime

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/goals"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// goalCache holds the goals of watched sites, read from this instance's
// goals collection on first need and dropped when a goal of the site
// changes, so REST edits apply to the next hit without a restart. Goals are
// matched where the dashboards are: collectors have no goals of their own.
type goalCache struct {
	app   core.App
	mu    sync.Mutex
	sites map[string][]store.Goal
	gen   uint64 // bumped by every change, so a read racing one is not kept
}

func newGoalCache(app core.App) *goalCache {
	return &goalCache{app: app, sites: map[string][]store.Goal{}}
}

func (c *goalCache) bind() {
	drop := func(e *core.RecordEvent) error {
		c.forget(e.Record.GetString("site"))
		if orig := e.Record.Original(); orig != nil {
			c.forget(orig.GetString("site"))
		}
		return e.Next()
	}
	c.app.OnRecordAfterCreateSuccess(migrations.GoalsCollectionId).BindFunc(drop)
	c.app.OnRecordAfterUpdateSuccess(migrations.GoalsCollectionId).BindFunc(drop)
	c.app.OnRecordAfterDeleteSuccess(migrations.GoalsCollectionId).BindFunc(drop)
}

func (c *goalCache) forget(site string) {
	c.mu.Lock()
	delete(c.sites, site)
	c.gen++
	c.mu.Unlock()
}

// goals returns site's goals; a site whose goals cannot be read has none
// until the next change.
func (c *goalCache) goals(site string) []store.Goal {
	c.mu.Lock()
	list, ok := c.sites[site]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return list
	}
	list, _ = goals.Site(c.app, site)
	c.mu.Lock()
	if c.gen == gen {
		c.sites[site] = list
	}
	c.mu.Unlock()
	return list
}

var (
	pageviewPrefix = []byte(`{"type":"` + TypePageview + `"`)
	eventPrefix    = []byte(`{"type":"` + TypeEvent + `"`)
)

// conversions returns the conversion messages of a live message of site:
// none unless the site has goals and the message is a hit that may reach one.
func (c *goalCache) conversions(site string, data []byte) [][]byte {
	if !bytes.HasPrefix(data, arrivalPrefix) && !bytes.HasPrefix(data, pageviewPrefix) && !bytes.HasPrefix(data, eventPrefix) {
		return nil
	}
	goals := c.goals(site)
	if len(goals) == 0 {
		return nil
	}
	var m Message
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	var out [][]byte
	for _, conv := range conversionMessages(&m, goals) {
		if b, err := json.Marshal(conv); err == nil {
			out = append(out, b)
		}
	}
	return out
}

package sitecache

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/migrations"
)

// Collection is the id of the sites collection (its name is the host app's
// choice).
const Collection = migrations.SitesCollectionId

// retryEvery bounds how often Get retries a failed load, so a broken
// database never turns into a query per hit.
const retryEvery = time.Second

// Cache is an in-memory copy of the sites collection.
//
// Readers load an immutable map through an atomic pointer; writers (the
// initial load and the record hooks) copy the map, change the copy and
// swap it in, one at a time.
type Cache struct {
	app core.App

	sites atomic.Pointer[map[string]Site]

	mu      sync.Mutex // serializes writers
	lastTry time.Time  // last failed lazy load, guarded by mu
}

// Register creates the cache of app's sites and binds the hooks that keep
// it fresh. It loads every site when the app starts serving, or on the
// first Get if that comes earlier (tests, commands).
//
// Changes are picked up in the after-success record hooks, which PocketBase
// runs only once the surrounding transaction committed, so a rolled back
// change never reaches the cache.
func Register(app core.App) *Cache {
	c := &Cache{app: app}

	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if err := c.Reload(); err != nil {
			return err
		}
		return e.Next()
	})

	refresh := func(e *core.RecordEvent) error {
		c.refresh(e.Record.Id)
		return e.Next()
	}
	app.OnRecordAfterCreateSuccess(Collection).BindFunc(refresh)
	app.OnRecordAfterUpdateSuccess(Collection).BindFunc(refresh)
	app.OnRecordAfterDeleteSuccess(Collection).BindFunc(refresh)

	return c
}

// New returns an empty cache that its owner fills (Replace, Put, Delete)
// instead of the sites collection: a collector node's copy of the control
// node's sites, kept by package sitemirror.
func New() *Cache {
	c := &Cache{}
	c.sites.Store(&map[string]Site{})
	return c
}

// All returns every cached site. The map is shared: read it, never change it.
func (c *Cache) All() map[string]Site {
	m := c.sites.Load()
	if m == nil {
		m = c.lazyLoad()
	}
	return *m
}

// Replace swaps in a whole new set of sites.
func (c *Cache) Replace(sites map[string]Site) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := maps.Clone(sites)
	if m == nil {
		m = map[string]Site{}
	}
	c.sites.Store(&m)
}

// Put adds or replaces one site.
func (c *Cache) Put(s Site) {
	c.change(func(m map[string]Site) { m[s.ID] = s })
}

// Delete removes one site.
func (c *Cache) Delete(id string) {
	c.change(func(m map[string]Site) { delete(m, id) })
}

func (c *Cache) change(fn func(map[string]Site)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]Site{}
	if cur := c.sites.Load(); cur != nil {
		next = maps.Clone(*cur)
	}
	fn(next)
	c.sites.Store(&next)
}

// Get returns the site with the given record id. It does no I/O once the
// cache is loaded.
func (c *Cache) Get(id string) (Site, bool) {
	m := c.sites.Load()
	if m == nil {
		m = c.lazyLoad()
	}
	s, ok := (*m)[id]
	return s, ok
}

// Len returns the number of cached sites.
func (c *Cache) Len() int {
	m := c.sites.Load()
	if m == nil {
		m = c.lazyLoad()
	}
	return len(*m)
}

// Reload replaces the cache with every site in the database.
func (c *Cache) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loadLocked()
}

func (c *Cache) loadLocked() error {
	records, err := c.app.FindAllRecords(Collection)
	if err != nil {
		return fmt.Errorf("sitecache: load sites: %w", err)
	}
	m := make(map[string]Site, len(records))
	for _, r := range records {
		m[r.Id] = FromRecord(r)
	}
	c.sites.Store(&m)
	return nil
}

var empty = map[string]Site{}

func (c *Cache) lazyLoad() *map[string]Site {
	c.mu.Lock()
	defer c.mu.Unlock()

	if m := c.sites.Load(); m != nil {
		return m // loaded while we waited
	}
	if c.app == nil {
		return &empty // filled by its owner (New)
	}
	if time.Since(c.lastTry) < retryEvery {
		return &empty
	}
	if err := c.loadLocked(); err != nil {
		c.lastTry = time.Now()
		c.app.Logger().Error("Failed to load the sites cache", "error", err)
		return &empty
	}
	return c.sites.Load()
}

// refresh re-reads one site after a committed change. Reading the row,
// rather than trusting the hook's record, keeps the cache right when the
// hooks of two quick updates run out of order: whichever runs last reads
// the latest committed state.
func (c *Cache) refresh(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	cur := c.sites.Load()
	if cur == nil {
		return // not loaded yet: the first load will see the change
	}

	r, err := c.app.FindRecordById(Collection, id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		// Unsure about this site: drop the cache so the next Get reloads.
		c.app.Logger().Error("Failed to refresh the sites cache", "id", id, "error", err)
		c.sites.Store(nil)
		return
	}

	next := maps.Clone(*cur)
	if r == nil {
		delete(next, id)
	} else {
		next[id] = FromRecord(r)
	}
	c.sites.Store(&next)
}

// FromRecord converts a sites record. Domains are normalized again, so a row
// written around the validation hooks is still matched correctly; invalid
// entries are left out.
func FromRecord(r *core.Record) Site {
	s := Site{
		ID:              r.Id,
		Name:            r.GetString("name"),
		AllowSubdomains: r.GetBool("allow_subdomains"),
		Timezone:        r.GetString("timezone"),
		Public:          r.GetBool("public"),
	}
	if s.Timezone == "" {
		s.Timezone = "UTC"
	}

	var raw []string
	_ = r.UnmarshalJSONField("domains", &raw)
	for _, d := range raw {
		if d, err := NormalizeDomain(d); err == nil {
			s.Domains = append(s.Domains, d)
		}
	}
	return s
}

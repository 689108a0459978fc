package sitemirror_test

import (
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/internal/sitemirror"
	"github.com/pocketlytics/pocketlytics/internal/testutil"

	_ "github.com/pocketlytics/pocketlytics/migrations"
)

// control is a control node: a PocketBase app with the sites collection,
// publishing its mirror through rdb.
type control struct {
	t     *testing.T
	app   *tests.TestApp
	owner string
}

func startControl(t *testing.T, rdb *redis.Client, opts sitemirror.Options) *control {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	u := core.NewRecord(users)
	u.SetEmail("owner@example.com")
	u.SetPassword("1234567890")
	if err := app.Save(u); err != nil {
		t.Fatal(err)
	}
	c := &control{t: t, app: app, owner: u.Id}
	c.save(c.newSite(), "first.example.com")

	sitemirror.Publish(app, rdb, opts)
	serve := &core.ServeEvent{}
	serve.App = app
	if err := app.OnServe().Trigger(serve, func(*core.ServeEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = app.OnTerminate().Trigger(&core.TerminateEvent{App: app}, func(*core.TerminateEvent) error { return nil })
	})
	return c
}

func (c *control) newSite() *core.Record {
	col, err := c.app.FindCollectionByNameOrId(sitecache.Collection)
	if err != nil {
		c.t.Fatal(err)
	}
	r := core.NewRecord(col)
	r.Set("name", "Example")
	r.Set("owner", c.owner)
	return r
}

func (c *control) save(r *core.Record, domains ...string) *core.Record {
	c.t.Helper()
	r.Set("domains", domains)
	if err := c.app.Save(r); err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *control) first() *core.Record {
	r, err := c.app.FindFirstRecordByFilter(sitecache.Collection, "domains ~ 'first.example.com'")
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// within fails unless cond holds within d, and returns how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func allows(sites *sitecache.Cache, id, host string) bool {
	s, ok := sites.Get(id)
	return ok && s.AllowsHost(host)
}

func clientVia(t *testing.T, addr string) *redis.Client {
	t.Helper()
	u, err := url.Parse(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// A site created, changed or deleted on the control node is honoured by a
// collector within a second.
func TestChangesReachFollowersWithinASecond(t *testing.T) {
	rdb := testutil.Redis(t)
	opts := sitemirror.Options{Key: testutil.RedisPrefix(t, "pltest:") + ":sites"}
	c := startControl(t, rdb, opts)

	sites := sitecache.New()
	f := sitemirror.Follow(rdb, sites, opts)
	defer f.Close()
	first := c.first()
	within(t, 2*time.Second, "the first load", func() bool { return allows(sites, first.Id, "first.example.com") })

	created := c.save(c.newSite(), "new.example.com")
	d := within(t, time.Second, "a created site", func() bool { return allows(sites, created.Id, "new.example.com") })
	t.Logf("created site honoured after %s", d)

	c.save(first, "renamed.example.com")
	within(t, time.Second, "a changed site", func() bool {
		return allows(sites, first.Id, "renamed.example.com") && !allows(sites, first.Id, "first.example.com")
	})

	if err := c.app.Delete(created); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a deleted site", func() bool { _, ok := sites.Get(created.Id); return !ok })
}

// A collector cut off from Redis keeps its copy, starts again from the copy
// saved in its file, and catches up with the changes it missed once Redis
// answers.
func TestFollowerOutage(t *testing.T) {
	rdb := testutil.Redis(t)
	opts := sitemirror.Options{Key: testutil.RedisPrefix(t, "pltest:") + ":sites"}
	c := startControl(t, rdb, opts)
	first := c.first()

	proxy := testutil.StartProxy(t, rdb.Options().Addr)
	viaProxy := clientVia(t, proxy.Addr)
	fopts := opts
	fopts.File = filepath.Join(t.TempDir(), "sites.json")
	sites := sitecache.New()
	f := sitemirror.Follow(viaProxy, sites, fopts)
	within(t, 2*time.Second, "the first load", func() bool { return allows(sites, first.Id, "first.example.com") })

	proxy.Cut()
	missed := c.save(c.newSite(), "missed.example.com")
	time.Sleep(200 * time.Millisecond)
	if !allows(sites, first.Id, "first.example.com") {
		t.Fatal("the copy was dropped during the outage")
	}

	// A restart during the outage starts from the saved copy.
	f.Close()
	restarted := sitecache.New()
	f = sitemirror.Follow(viaProxy, restarted, fopts)
	defer f.Close()
	if !allows(restarted, first.Id, "first.example.com") {
		t.Fatalf("a collector restarted during the outage does not know the site: %v", restarted.All())
	}

	proxy.Restore()
	within(t, 5*time.Second, "the change missed during the outage", func() bool { return allows(restarted, missed.Id, "missed.example.com") })
}

// Changes made while the control node cannot reach Redis reach collectors
// once it can: it writes a whole new copy.
func TestPublisherOutage(t *testing.T) {
	rdb := testutil.Redis(t)
	opts := sitemirror.Options{Key: testutil.RedisPrefix(t, "pltest:") + ":sites"}
	proxy := testutil.StartProxy(t, rdb.Options().Addr)
	c := startControl(t, clientVia(t, proxy.Addr), opts)

	sites := sitecache.New()
	f := sitemirror.Follow(rdb, sites, opts)
	defer f.Close()
	first := c.first()
	within(t, 2*time.Second, "the first load", func() bool { return allows(sites, first.Id, "first.example.com") })

	proxy.Cut()
	created := c.save(c.newSite(), "during.example.com")
	if err := c.app.Delete(first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.Restore()
	within(t, 5*time.Second, "the changes made during the outage", func() bool {
		_, gone := sites.Get(first.Id)
		return allows(sites, created.Id, "during.example.com") && !gone
	})
	if ids := slices.Collect(maps.Keys(sites.All())); len(ids) != 1 {
		t.Fatalf("sites after the outage: %v", ids)
	}
}

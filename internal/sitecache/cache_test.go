package sitecache_test

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"

	_ "github.com/pocketlytics/pocketlytics/migrations"
)

// newApp returns a fresh test app with the migrations applied.
func newApp(t testing.TB) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

func newUser(t testing.TB, app core.App, email string) *core.Record {
	t.Helper()
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	u := core.NewRecord(users)
	u.SetEmail(email)
	u.SetPassword("1234567890")
	if err := app.Save(u); err != nil {
		t.Fatal(err)
	}
	return u
}

func newSite(t testing.TB, app core.App, owner string, domains ...string) *core.Record {
	t.Helper()
	col, err := app.FindCollectionByNameOrId(sitecache.Collection)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(col)
	r.Set("name", "Example")
	r.Set("owner", owner)
	r.Set("domains", domains)
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCacheLoadsExistingSites(t *testing.T) {
	app := newApp(t)
	u := newUser(t, app, "owner@example.com")
	r := newSite(t, app, u.Id, "example.com", "Blog.Example.com")

	c := sitecache.Register(app) // registered after the record exists: Get loads lazily

	s, ok := c.Get(r.Id)
	if !ok {
		t.Fatal("site not found")
	}
	want := []string{"example.com", "blog.example.com"}
	if !slices.Equal(s.Domains, want) || s.Timezone != "UTC" || s.Name != "Example" {
		t.Fatalf("got %+v, want domains %v, timezone UTC", s, want)
	}
	if _, ok := c.Get("doesnotexist123"); ok {
		t.Fatal("unknown id found")
	}
}

func TestCacheFollowsChanges(t *testing.T) {
	app := newApp(t)
	c := sitecache.Register(app)
	u := newUser(t, app, "owner@example.com")

	if c.Len() != 0 {
		t.Fatalf("want an empty cache, got %d sites", c.Len())
	}

	r := newSite(t, app, u.Id, "example.com")
	if s, ok := c.Get(r.Id); !ok || !slices.Equal(s.Domains, []string{"example.com"}) {
		t.Fatalf("after create: got %+v, %v", s, ok)
	}

	r.Set("domains", []string{"example.org"})
	r.Set("allow_subdomains", true)
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get(r.Id); !slices.Equal(s.Domains, []string{"example.org"}) || !s.AllowSubdomains {
		t.Fatalf("after update: got %+v", s)
	}

	if err := app.Delete(r); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(r.Id); ok {
		t.Fatal("deleted site still cached")
	}
}

func TestCacheFollowsTransactions(t *testing.T) {
	app := newApp(t)
	c := sitecache.Register(app)
	u := newUser(t, app, "owner@example.com")
	c.Len() // load before the transactions

	t.Run("rolled back", func(t *testing.T) {
		var id string
		rollback := errors.New("rollback")
		err := app.RunInTransaction(func(tx core.App) error {
			id = newSite(t, tx, u.Id, "example.com").Id
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("want the rollback error, got %v", err)
		}
		if _, ok := c.Get(id); ok {
			t.Fatal("a rolled back site is cached")
		}
	})

	t.Run("committed", func(t *testing.T) {
		var id string
		err := app.RunInTransaction(func(tx core.App) error {
			id = newSite(t, tx, u.Id, "example.com").Id
			if _, ok := c.Get(id); ok {
				t.Error("site cached before its transaction committed")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Get(id); !ok {
			t.Fatal("committed site not cached")
		}
	})

	t.Run("owner deleted", func(t *testing.T) {
		id := newSite(t, app, u.Id, "example.com").Id
		if err := app.Delete(u); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Get(id); ok {
			t.Fatal("site of a deleted owner still cached (cascade delete)")
		}
	})
}

func TestCacheLoadsOnServe(t *testing.T) {
	app := newApp(t)
	c := sitecache.Register(app)
	u := newUser(t, app, "owner@example.com")
	c.Len() // loaded, empty

	// A row written around PocketBase (no hooks run) is seen only by a load.
	_, err := app.DB().NewQuery(`INSERT INTO sites (id, name, owner, domains, timezone)
		VALUES ('rawsite00000001', 'Raw', {:owner}, '["example.com"]', 'Europe/Berlin')`).
		Bind(map[string]any{"owner": u.Id}).Execute()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("rawsite00000001"); ok {
		t.Fatal("site seen before any load")
	}

	err = app.OnServe().Trigger(&core.ServeEvent{App: app}, func(e *core.ServeEvent) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	s, ok := c.Get("rawsite00000001")
	if !ok || s.Timezone != "Europe/Berlin" || !s.AllowsHost("example.com") {
		t.Fatalf("after serve: got %+v, %v", s, ok)
	}
}

func TestCacheConcurrentReadsAndWrites(t *testing.T) {
	app := newApp(t)
	c := sitecache.Register(app)
	u := newUser(t, app, "owner@example.com")
	r := newSite(t, app, u.Id, "example.com")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s, ok := c.Get(r.Id); !ok || len(s.Domains) != 1 {
					t.Errorf("read a broken site: %+v, %v", s, ok)
					return
				}
			}
		})
	}
	for i := range 20 {
		r.Set("domains", []string{"example" + strconv.Itoa(i) + ".com"})
		if err := app.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()

	if s, _ := c.Get(r.Id); !slices.Equal(s.Domains, []string{"example19.com"}) {
		t.Fatalf("after the last update: %v", s.Domains)
	}
}

func BenchmarkGet(b *testing.B) {
	app := newApp(b)
	c := sitecache.Register(app)
	u := newUser(b, app, "owner@example.com")
	id := newSite(b, app, u.Id, "example.com").Id
	c.Len()

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s, ok := c.Get(id); !ok || !s.AllowsHost("www.example.com") {
				b.Fatal("site not found or host refused")
			}
		}
	})
}

package hooks_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/enrich"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"

	_ "github.com/pocketlytics/pocketlytics/migrations"
)

// Fixture ids (PocketBase record id shape).
const (
	ownerID     = "owner0000000001"
	memberID    = "member000000001"
	strangerID  = "stranger0000001"
	siteID      = "site00000000001" // example.com, www.example.com implied
	subsSiteID  = "site00000000002" // shop.example, subdomains allowed
	noSiteID    = "nosuchsite00001"
	superuserID = "superuser000001"
)

// fixture is a test app with the sites hooks, the site cache and the
// collect route registered, users and sites seeded.
type fixture struct {
	app   *tests.TestApp
	queue *memQueue
	live  *recorder
}

type fixtureOptions struct {
	rateLimit      float64
	trackLocalhost bool
	queueErr       error
}

// TestMain removes the shared data dir the fixtures start from.
func TestMain(m *testing.M) {
	code := m.Run()
	if templateDir != "" {
		os.RemoveAll(templateDir)
	}
	os.Exit(code)
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error

	// tokens holds an auth token per fixture user and the superuser, valid
	// in every copy of the template.
	tokens = map[string]string{}
)

// template builds, once per test binary, a data dir with the migrations
// applied and the fixture records saved; every fixture starts from a copy.
func template(t testing.TB) string {
	t.Helper()
	templateOnce.Do(func() {
		templateDir, templateErr = os.MkdirTemp("", "pocketlytics_hooks_test_")
		if templateErr != nil {
			return
		}
		templateErr = seed(templateDir)
	})
	if templateErr != nil {
		t.Fatal(templateErr)
	}
	return templateDir
}

func seed(dir string) error {
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir, EncryptionEnv: "pb_test_env"})
	if err := app.Bootstrap(); err != nil {
		return err
	}
	defer app.ResetBootstrapState()
	if err := app.RunAllMigrations(); err != nil {
		return err
	}

	save := func(collection, id string, data map[string]any) error {
		col, err := app.FindCollectionByNameOrId(collection)
		if err != nil {
			return err
		}
		r := core.NewRecord(col)
		r.Id = id
		r.Load(data)
		if p, ok := data["password"].(string); ok {
			r.SetPassword(p)
		}
		return app.Save(r)
	}
	for _, id := range []string{ownerID, memberID, strangerID, superuserID} {
		col := "users"
		if id == superuserID {
			col = core.CollectionNameSuperusers
		}
		if err := save(col, id, map[string]any{"email": id + "@example.com", "password": "password-123"}); err != nil {
			return err
		}
		r, err := app.FindRecordById(col, id)
		if err != nil {
			return err
		}
		if tokens[id], err = r.NewAuthToken(); err != nil {
			return err
		}
	}
	if err := save("sites", siteID, map[string]any{
		"name": "Example", "domains": []string{"example.com"}, "timezone": "UTC", "owner": ownerID, "members": []string{memberID},
	}); err != nil {
		return err
	}
	return save("sites", subsSiteID, map[string]any{
		"name": "Shop", "domains": []string{"shop.example"}, "timezone": "UTC", "allow_subdomains": true, "owner": ownerID,
		"public": true, // public stats do not open the record itself
	})
}

// token returns an auth token of a fixture user or of the superuser.
func token(t testing.TB, id string) string {
	t.Helper()
	template(t)
	tok, ok := tokens[id]
	if !ok {
		t.Fatalf("no fixture record %q", id)
	}
	return tok
}

func newFixture(t testing.TB, opts fixtureOptions) *fixture {
	t.Helper()
	app, err := tests.NewTestApp(template(t))
	if err != nil {
		t.Fatal(err)
	}

	f := &fixture{app: app, queue: &memQueue{err: opts.queueErr}, live: &recorder{}}

	if err := hooks.RegisterSites(app); err != nil {
		t.Fatal(err)
	}
	pipeline, err := enrich.New(enrich.Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = hooks.RegisterCollect(app, hooks.CollectConfig{
		Sites:          sitecache.Register(app),
		Enricher:       pipeline,
		Queue:          f.queue,
		Live:           f.live,
		RateLimit:      opts.rateLimit,
		TrackLocalhost: opts.trackLocalhost,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// memQueue is an in-test producer until the embedded queue lands.
type memQueue struct {
	mu     sync.Mutex
	err    error
	events []event.Event
}

func (q *memQueue) Enqueue(ctx context.Context, events ...event.Event) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.events = append(q.events, events...)
	return nil
}

func (q *memQueue) all() []event.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]event.Event(nil), q.events...)
}

// recorder is a LivePublisher that remembers what it was told.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Publish(ev event.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

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
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"

	_ "github.com/pocketlytics/pocketlytics/migrations"
)

// Fixture ids (PocketBase record id shape).
const (
	ownerID     = "owner0000000001"
	adminID     = "admin0000000001"
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
	queue *localq.Queue // the embedded queue, in a temp dir
	live  *recorder
	read  []event.Event // read from queue so far
}

type fixtureOptions struct {
	rateLimit      float64
	trackLocalhost bool
	queueClosed    bool // Enqueue fails
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
	for _, id := range []string{ownerID, adminID, memberID, strangerID, superuserID} {
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

	q, err := localq.Open(t.TempDir(), localq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if opts.queueClosed {
		q.Close()
	}

	f := &fixture{app: app, queue: q, live: &recorder{}}

	if err := hooks.RegisterSites(app); err != nil {
		t.Fatal(err)
	}
	pipeline, err := enrich.New(enrich.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pipeline.Close() })
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

// events returns what the route queued so far, read back from the queue.
func (f *fixture) events(t testing.TB) []event.Event {
	t.Helper()
	for {
		msgs, err := f.queue.Read(context.Background(), 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return f.read
		}
		for _, m := range msgs {
			f.read = append(f.read, m.Event)
		}
	}
}

// recorder is a LivePublisher that counts what it was told.
type recorder struct {
	mu sync.Mutex
	n  int
}

func (r *recorder) Publish(ev event.Event) {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

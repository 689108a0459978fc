// Package livetest holds test helpers for the live layer: a PocketBase test
// app with the app's migrations and sites hooks, an httptest server running the app's router
// (as PocketBase's tests.ApiScenario builds it), auth tokens, hits, and a
// small client of PocketBase's realtime SSE API.
//
//	app := livetest.NewApp(t)
//	live, _ := realtime.Register(app, realtime.Config{})
//	srv := livetest.Serve(t, app) // after every Register: it triggers OnServe
//	c := livetest.Connect(t, srv.URL)
//	c.Subscribe(t, livetest.Token(t, app, "users", livetest.Owner), realtime.Topic(livetest.Site))
//	live.Publish(livetest.Hit(livetest.Site, 1, event.Pageview, "/"))
//	msg := c.Next(t)
package livetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/realtime"

	_ "github.com/pocketlytics/pocketlytics/migrations" // the real sites collection
)

// Users of PocketBase's test data ("users" collection).
const (
	Owner    = "test@example.com"
	Member   = "test2@example.com"
	Stranger = "test3@example.com"
)

// Sites created by NewApp: Site is owned by Owner with Member as member,
// Public is Stranger's and public, Other is Stranger's and private.
const (
	Site   = "livesite0000001"
	Public = "livesite0000002"
	Other  = "livesite0000003"
)

// Wait bounds every wait of these helpers. It is a safety net against a
// hang, never a timing assertion.
const Wait = 10 * time.Second

// NewApp returns a test app with the app's own migrations applied (the real
// sites collection and its rules), the sites hooks registered as the app
// registers them, and the three sites.
func NewApp(t testing.TB) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	if err := hooks.RegisterSites(app); err != nil {
		t.Fatal(err)
	}
	CreateSite(t, app, Site, Owner, []string{Member}, false)
	CreateSite(t, app, Public, Stranger, nil, true)
	CreateSite(t, app, Other, Stranger, nil, false)
	return app
}

// CreateSite creates a site with a fixed id and the domain id+".example".
func CreateSite(t testing.TB, app core.App, id, owner string, members []string, public bool) *core.Record {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(realtime.SitesCollection)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Id = id
	r.Set("name", id)
	r.Set("domains", []string{id + ".example"})
	r.Set("owner", UserID(t, app, owner))
	ids := []string{}
	for _, m := range members {
		ids = append(ids, UserID(t, app, m))
	}
	r.Set("members", ids)
	r.Set("public", public)
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// UserID returns the id of a user of the test data.
func UserID(t testing.TB, app core.App, email string) string {
	t.Helper()
	u, err := app.FindAuthRecordByEmail("users", email)
	if err != nil {
		t.Fatal(err)
	}
	return u.Id
}

// Token returns an auth token of a user ("users") or superuser ("_superusers").
func Token(t testing.TB, app core.App, collection, email string) string {
	t.Helper()
	r, err := app.FindAuthRecordByEmail(collection, email)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.NewAuthToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Ready waits until the live layer delivers messages (see realtime.Live.Ready).
func Ready(t testing.TB, live *realtime.Live) {
	t.Helper()
	select {
	case <-live.Ready():
	case <-time.After(Wait):
		t.Fatal("the live layer never became ready")
	}
}

// Serve runs the app's router on an httptest server, after triggering
// OnServe as PocketBase does, so routes and hooks bound there are live.
func Serve(t testing.TB, app core.App) *httptest.Server {
	t.Helper()
	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	se := new(core.ServeEvent)
	se.App = app
	se.Router = router
	var mux http.Handler
	err = app.OnServe().Trigger(se, func(e *core.ServeEvent) error {
		m, err := e.Router.BuildMux()
		mux = m
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections() // SSE streams never end on their own
		srv.Close()
	})
	return srv
}

// Hit returns an accepted hit as the ingest route would hand it over.
func Hit(site string, visitor uint64, typ, path string) event.Event {
	id := make([]byte, 16)
	rand.Read(id)
	return event.Event{
		ID: hex.EncodeToString(id), Time: time.Now().UTC().Truncate(time.Millisecond),
		SiteID: site, Type: typ, Hostname: "example.com", Pathname: path,
		ReferrerHost: "news.ycombinator.com", Channel: "referral",
		Country: "DE", Region: "BE", City: "Berlin", Latitude: 52.52, Longitude: 13.405,
		Device: "desktop", Browser: "Firefox", OS: "Linux",
		VisitorID: visitor, SessionID: visitor * 7, Entry: typ == event.Pageview,
	}
}

// Event is one server-sent event.
type Event struct {
	ID   string
	Name string
	Data []byte
	At   time.Time // when the client read it
}

// Decode decodes the event's data into a map.
func (e Event) Decode(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("event %q: bad data %q: %v", e.Name, e.Data, err)
	}
	return m
}

// Client is a realtime SSE connection.
type Client struct {
	ID     string
	base   string
	events chan Event
	cancel context.CancelFunc
	done   chan struct{}
}

// Connect opens a realtime connection and waits for PB_CONNECT.
func Connect(t testing.TB, base string) *Client {
	t.Helper()
	c := &Client{events: make(chan Event, 4096)}
	c.ID = ConnectFunc(t, base, c, func(e Event) { c.events <- e })
	return c
}

// ConnectFunc opens a realtime connection whose events (after PB_CONNECT)
// go to fn, called from the reading goroutine: while fn blocks, the
// connection is not read. It returns the client id. c may be nil.
func ConnectFunc(t testing.TB, base string, c *Client, fn func(Event)) string {
	t.Helper()
	if c == nil {
		c = &Client{}
	}
	c.base = base
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/realtime", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("connect: status %d", res.StatusCode)
	}
	t.Cleanup(c.Close)

	connected := make(chan string, 1)
	go func() {
		defer close(c.done)
		defer res.Body.Close()
		first := true
		ReadSSE(res.Body, func(e Event) {
			if first {
				first = false
				connected <- e.ID
				return
			}
			fn(e)
		})
	}()
	select {
	case id := <-connected:
		return id
	case <-time.After(Wait):
		t.Fatal("no PB_CONNECT")
		return ""
	}
}

// ReadSSE parses an event stream until it ends.
func ReadSSE(r io.Reader, fn func(Event)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var e Event
	var data bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if e.Name != "" || data.Len() > 0 {
				e.Data = bytes.Clone(data.Bytes())
				e.At = time.Now()
				fn(e)
			}
			e = Event{}
			data.Reset()
		case strings.HasPrefix(line, "id:"):
			e.ID = strings.TrimPrefix(line, "id:")
		case strings.HasPrefix(line, "event:"):
			e.Name = strings.TrimPrefix(line, "event:")
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(line, "data:"))
		}
	}
}

// Subscribe sets the client's subscriptions and returns the status code.
// token may be empty (a guest).
func (c *Client) Subscribe(t testing.TB, token string, subs ...string) int {
	t.Helper()
	return SubscribeID(t, c.base, c.ID, token, subs...)
}

// SubscribeID sets the subscriptions of the realtime client id.
func SubscribeID(t testing.TB, base, id, token string, subs ...string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"clientId": id, "subscriptions": subs})
	req, err := http.NewRequest(http.MethodPost, base+"/api/realtime", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// Next returns the next event, failing the test if none comes in time.
func (c *Client) Next(t testing.TB) Event {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(Wait):
		t.Fatal("no live message arrived")
		return Event{}
	}
}

// Within returns the next event if one comes within d.
func (c *Client) Within(d time.Duration) (Event, bool) {
	select {
	case e := <-c.events:
		return e, true
	case <-time.After(d):
		return Event{}, false
	}
}

// NextType returns the next event whose data has the given "type",
// skipping others (count messages, for instance).
func (c *Client) NextType(t testing.TB, typ string) (Event, map[string]any) {
	t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case e := <-c.events:
			if m := e.Decode(t); m["type"] == typ {
				return e, m
			}
		case <-deadline:
			t.Fatalf("no %q message arrived", typ)
			return Event{}, nil
		}
	}
}

// Close ends the connection.
func (c *Client) Close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

const desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// The host app, built from this directory, with the plugin added: its own
// page, route, collection, hook and realtime work as they did, and the
// plugin counts hits and serves its dashboard under /analytics/.
func TestHostAppWithPlugin(t *testing.T) {
	app := testutil.StartApp(t, testutil.AppOptions{Package: "./examples/existing-app"})

	t.Run("host page and route", func(t *testing.T) {
		if body := get(t, app.URL+"/"); !strings.Contains(body, "The host app's own page") {
			t.Fatalf("GET /: %s", body)
		}
		var hello struct{ Message string }
		app.Call(t, "GET", "/api/hello", "", nil, &hello, http.StatusOK)
		if hello.Message != "Hello from the host app." {
			t.Fatalf("GET /api/hello: %+v", hello)
		}
	})

	t.Run("dashboard under /analytics/", func(t *testing.T) {
		if body := get(t, app.URL+"/analytics/sites/x"); !strings.Contains(body, `<base href="/analytics/">`) {
			t.Fatalf("GET /analytics/sites/x: %s", body)
		}
		if body := get(t, app.URL+"/t.js"); !strings.Contains(body, "/api/collect") {
			t.Fatalf("GET /t.js: %s", body)
		}
	})

	t.Run("hits counted, the host's hook drops some", func(t *testing.T) {
		site, token := app.CreateSite(t, "example.com")
		if got := collect(t, app.URL, site, "https://example.com/pricing"); got != "" {
			t.Fatalf("hit dropped: %q", got)
		}
		if got := collect(t, app.URL, site, "https://example.com/admin/users"); got != "hook" {
			t.Fatalf("admin hit: dropped %q, want hook", got)
		}
		var ov struct {
			Current struct{ Pageviews int } `json:"current"`
		}
		deadline := time.Now().Add(15 * time.Second)
		for ov.Current.Pageviews < 1 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			app.Call(t, "GET", "/api/analytics/sites/"+site+"/overview?period=today", token, nil, &ov, http.StatusOK)
		}
		time.Sleep(1500 * time.Millisecond) // one more flush interval: the dropped hit must not arrive
		app.Call(t, "GET", "/api/analytics/sites/"+site+"/overview?period=today", token, nil, &ov, http.StatusOK)
		if ov.Current.Pageviews != 1 {
			t.Fatalf("pageviews = %d, want 1", ov.Current.Pageviews)
		}
	})

	t.Run("host collection CRUD and realtime", func(t *testing.T) {
		events := subscribe(t, app.URL, "notes")
		var note struct{ ID, Title string }
		app.Call(t, "POST", "/api/collections/notes/records", "", map[string]string{"title": "  hello  "}, &note, http.StatusOK)
		if note.Title != "hello" {
			t.Fatalf("the host's hook did not trim: %q", note.Title)
		}
		app.Call(t, "GET", "/api/collections/notes/records/"+note.ID, "", nil, &note, http.StatusOK)
		select {
		case ev := <-events:
			if !strings.Contains(ev, `"action":"create"`) || !strings.Contains(ev, note.ID) {
				t.Fatalf("realtime event: %s", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no realtime event for the new note")
		}
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
	}
	return string(body)
}

// collect sends a pageview and returns the drop reason ("" when kept).
func collect(t *testing.T, base, site, page string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"site": site, "type": "pageview", "url": page})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/collect", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", desktopUA)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/collect: %d", res.StatusCode)
	}
	return res.Header.Get(hooks.DroppedHeader)
}

// subscribe opens PocketBase's realtime SSE, subscribes to topic and sends
// the data of each message on the returned channel.
func subscribe(t *testing.T, base, topic string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/realtime", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	lines := bufio.NewScanner(res.Body)
	next := func() (event, data string) {
		for lines.Scan() {
			l := lines.Text()
			switch {
			case strings.HasPrefix(l, "event:"):
				event = strings.TrimSpace(l[len("event:"):])
			case strings.HasPrefix(l, "data:"):
				data = strings.TrimSpace(l[len("data:"):])
			case l == "" && event != "":
				return event, data
			}
		}
		return "", ""
	}
	event, data := next()
	var connect struct{ ClientId string }
	if event != "PB_CONNECT" || json.Unmarshal([]byte(data), &connect) != nil || connect.ClientId == "" {
		t.Fatalf("realtime connect: %q %q", event, data)
	}
	body, _ := json.Marshal(map[string]any{"clientId": connect.ClientId, "subscriptions": []string{topic}})
	sub, err := http.Post(base+"/api/realtime", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sub.Body.Close()
	if sub.StatusCode != http.StatusNoContent {
		t.Fatalf("realtime subscribe: %d", sub.StatusCode)
	}
	out := make(chan string, 8)
	go func() {
		for {
			event, data := next()
			if event == "" {
				return
			}
			if event == topic {
				out <- data
			}
		}
	}()
	return out
}

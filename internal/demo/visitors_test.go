package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

type received struct {
	ip, ua, contentType string
	hit                 hit
}

// TestSimulatorVisits runs a fast simulation against a recording server and
// checks that every visitor behaves like the tracker: pageview first, leave
// last, text/plain JSON bodies for the demo domain, addresses from the
// country table.
func TestSimulatorVisits(t *testing.T) {
	var mu sync.Mutex
	var hits []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var h hit
		if err := json.Unmarshal(body, &h); err != nil {
			t.Errorf("body is not JSON: %q", body)
		}
		mu.Lock()
		hits = append(hits, received{r.Header.Get("X-Forwarded-For"), r.Header.Get("User-Agent"), r.Header.Get("Content-Type"), h})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	sim := &Simulator{CollectURL: srv.URL + "/api/collect", Site: "site1", Rate: 3000, Initial: 10, Speed: 100, Seed: 42}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sim.Run(ctx); err != nil {
		t.Fatal(err)
	}
	online, sent, refused, last := sim.Stats()
	if online != 0 || refused != 0 {
		t.Fatalf("after Run: %d online, %d refused (%s)", online, refused, last)
	}
	if int(sent) != len(hits) || sent < 50 {
		t.Fatalf("sent %d, server got %d; want at least 50", sent, len(hits))
	}

	byVisitor := map[string][]hit{}
	var order []string
	countries := map[string]bool{}
	types := map[string]int{}
	for _, r := range hits {
		key := r.ip + "|" + r.ua
		if _, ok := byVisitor[key]; !ok {
			order = append(order, key)
		}
		byVisitor[key] = append(byVisitor[key], r.hit)
		types[r.hit.Type]++
		if !strings.HasPrefix(r.contentType, "text/plain") {
			t.Errorf("Content-Type %q", r.contentType)
		}
		if r.hit.Site != "site1" || !strings.HasPrefix(r.hit.URL, "https://"+Domain+"/") || r.hit.Width == 0 {
			t.Errorf("bad hit %+v", r.hit)
		}
		if !event.ValidType(r.hit.Type) {
			t.Errorf("type %q", r.hit.Type)
		}
		addr, err := netip.ParseAddr(r.ip)
		if err != nil {
			t.Fatalf("X-Forwarded-For %q: %v", r.ip, err)
		}
		for _, c := range countries_() {
			if c.net.Contains(addr) {
				countries[c.code] = true
			}
		}
	}
	for _, key := range order {
		hs := byVisitor[key]
		if hs[0].Type != event.Pageview {
			t.Errorf("visitor %s starts with %s", key, hs[0].Type)
		}
		if hs[len(hs)-1].Type != event.Leave {
			t.Errorf("visitor %s ends with %s", key, hs[len(hs)-1].Type)
		}
	}
	if len(countries) < 5 {
		t.Errorf("visitors from %d countries, want at least 5", len(countries))
	}
	for _, typ := range []string{event.Pageview, event.Ping, event.Leave} {
		if types[typ] == 0 {
			t.Errorf("no %s hits: %v", typ, types)
		}
	}
	t.Logf("%d visitors from %d countries; hits: %v", len(order), len(countries), types)
}

func countries_() []country { return countries }

func TestCollectURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"http://127.0.0.1:8090", "http://127.0.0.1:8090/api/collect", true},
		{"https://stats.example.com/", "https://stats.example.com/api/collect", true},
		{"127.0.0.1:8090", "", false},
		{"", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := collectURL(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("collectURL(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

// TestCountriesAreValid guards the hand-kept table: one /24 per country,
// no duplicates.
func TestCountriesAreValid(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range countries {
		if len(c.code) != 2 || seen[c.code] || c.net.Bits() != 24 || !c.net.Addr().Is4() || c.weight <= 0 {
			t.Errorf("bad entry %+v", c)
		}
		seen[c.code] = true
	}
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/hit"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

func TestHandlerAddsOneEntryPerHit(t *testing.T) {
	rdb := testutil.Redis(t)
	stream := testutil.RedisPrefix(t, "pl:test:baseline:")
	h := handler(rdb, stream)

	for _, tc := range []struct {
		name   string
		method string
		body   string
		want   int
	}{
		{"hit", http.MethodPost, `{"site":"s1","type":"pageview","url":"https://example.com/","w":1280}`, http.StatusAccepted},
		{"not json", http.MethodPost, `{"site":`, http.StatusBadRequest},
		{"get", http.MethodGet, ``, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/api/collect", strings.NewReader(tc.body)))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}

	entries, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d stream entries, want 1 (one per accepted hit)", len(entries))
	}
	var p hit.Body
	if err := json.Unmarshal([]byte(entries[0].Values["e"].(string)), &p); err != nil || p.Site != "s1" || p.Width != 1280 {
		t.Fatalf("entry %v: %v", entries[0].Values, err)
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8091", ":8091", "192.0.2.1:8091"} {
		t.Run(addr, func(t *testing.T) {
			if err := run(addr, "redis://127.0.0.1:6379/0", "x"); err == nil || !strings.Contains(err.Error(), "loopback") {
				t.Fatalf("run(%q) = %v, want a loopback refusal", addr, err)
			}
		})
	}
}

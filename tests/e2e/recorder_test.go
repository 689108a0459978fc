package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/hooks"
)

// hitRecord is one request to /api/collect as the app saw it, with the
// app's answer.
type hitRecord struct {
	Method      string          `json:"method"`
	Path        string          `json:"path"`
	ContentType string          `json:"contentType"`
	Body        json.RawMessage `json:"body"`
	UserAgent   string          `json:"userAgent"`
	SecCHUA     string          `json:"secChUa,omitempty"`
	Status      int             `json:"status"`
	// Dropped is the reason the app gave (X-Pocketlytics-Dropped) for
	// answering 202 without recording the hit, as it does for bots.
	Dropped string `json:"dropped,omitempty"`
	Answer  string `json:"answer,omitempty"`
}

// recorder is a reverse proxy in front of the app that records every hit.
// The browser sees it as the app's origin; GET /__hits returns the record.
type recorder struct {
	URL string

	mu   sync.Mutex
	hits []hitRecord
}

func startRecorder(t *testing.T, appURL string) *recorder {
	t.Helper()
	target, err := url.Parse(appURL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.URL.Path != "/api/collect" {
			return nil
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body = io.NopCloser(bytes.NewReader(answer))
		body, _ := res.Request.Context().Value(bodyKey{}).([]byte)
		h := hitRecord{
			Method:      res.Request.Method,
			Path:        res.Request.URL.Path,
			ContentType: res.Request.Header.Get("Content-Type"),
			UserAgent:   res.Request.Header.Get("User-Agent"),
			SecCHUA:     res.Request.Header.Get("Sec-CH-UA"),
			Status:      res.StatusCode,
			Dropped:     res.Header.Get(hooks.DroppedHeader),
		}
		if json.Valid(body) {
			h.Body = body
		} else {
			h.Body, _ = json.Marshal(string(body))
		}
		if res.StatusCode != http.StatusAccepted {
			h.Answer = string(answer)
		}
		rec.mu.Lock()
		rec.hits = append(rec.hits, h)
		rec.mu.Unlock()
		return nil
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /__hits", func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(append([]hitRecord{}, rec.hits...))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/collect" && r.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			r = r.WithContext(contextWithBody(r, body))
		}
		proxy.ServeHTTP(w, r)
	})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	rec.URL = "http://" + l.Addr().String()
	return rec
}

type bodyKey struct{}

func contextWithBody(r *http.Request, body []byte) context.Context {
	return context.WithValue(r.Context(), bodyKey{}, body)
}

// Package server tests the real binary's defences against clients that hold
// connections: idle and stalled connections from one address are bounded
// and cut, and health and ingest keep answering meanwhile.
package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// hostile dials from 127.0.0.2, so that the test's own requests (from
// 127.0.0.1) are another client address.
func hostile(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: closed by the server; a timeout is an error
}

func TestHeldConnections(t *testing.T) {
	app := testutil.StartApp(t, testutil.AppOptions{})
	site, _ := app.CreateSite(t, "shop.example.com")

	// One address holds as many idle connections as it may, and more.
	const extra = 50
	conns := make([]net.Conn, hooks.DefaultMaxConnsPerAddr+extra)
	for i := range conns {
		conns[i] = hostile(t, app.Addr)
	}
	var mu sync.Mutex
	cut := 0
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			if closedWithin(c, time.Second) {
				mu.Lock()
				cut++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if cut != extra {
		t.Fatalf("%d connections cut at once, want the %d past the bound", cut, extra)
	}

	// Everyone else is still served.
	start := time.Now()
	res, err := http.Get(app.URL + "/api/health")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("health while connections are held: %v %v", res, err)
	}
	res.Body.Close()
	t.Logf("health answered in %v with %d idle connections held", time.Since(start), hooks.DefaultMaxConnsPerAddr)
	body := fmt.Sprintf(`{"site":%q,"type":"pageview","url":"https://shop.example.com/"}`, site)
	req, _ := http.NewRequest("POST", app.URL+"/api/collect", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest while connections are held: %v %v", res, err)
	}
	res.Body.Close()
	for _, c := range conns {
		c.Close()
	}

	// Stalled headers and a stalled hit body are cut after seconds, not
	// PocketBase's minute and five minutes.
	cases := []struct{ name, send string }{
		{"headers never finished", "POST /api/collect HTTP/1.1\r\nHost: x\r\n"},
		{"ingest body never sent", "POST /api/collect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n{"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := hostile(t, app.Addr)
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if !closedWithin(c, hooks.DefaultHeaderTimeout+5*time.Second) {
				t.Fatalf("still open after %v", time.Since(start))
			}
		})
	}
}

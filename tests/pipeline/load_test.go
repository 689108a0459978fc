package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// load posts pageviews with unique paths (/p/N) to an app and remembers
// which were acknowledged, so a test can check them against the store.
type load struct {
	url    string
	site   string
	domain string

	next     atomic.Int64
	mu       sync.Mutex
	acked    []int64
	statuses map[int]int
	errors   int
}

func newLoad(url, site, domain string) *load {
	return &load{url: url, site: site, domain: domain, statuses: map[int]int{}}
}

// run sends from workers goroutines until ctx is done, each pausing pause
// between hits (0: flat out).
func (l *load) run(ctx context.Context, workers int, pause time.Duration) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l.send(client)
				if pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			}
		}()
	}
	wg.Wait()
}

func (l *load) send(client *http.Client) {
	n := l.next.Add(1)
	body, _ := json.Marshal(map[string]any{
		"site": l.site, "type": "pageview",
		"url":      fmt.Sprintf("https://%s/p/%d", l.domain, n),
		"referrer": "https://www.google.com/", "w": 1280,
	})
	req, _ := http.NewRequest("POST", l.url+"/api/collect", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", desktopUA)
	res, err := client.Do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errors++
		return
	}
	res.Body.Close()
	l.statuses[res.StatusCode]++
	if res.StatusCode == http.StatusAccepted && res.Header.Get("X-Pocketlytics-Dropped") == "" {
		l.acked = append(l.acked, n)
	}
}

func (l *load) ackedSnapshot() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.acked...)
}

// check compares acknowledged hits with the paths found in the store:
// every acknowledged hit must be there exactly once. Hits in flight when a
// process died may be there too (queued, but the answer was lost).
func check(t *testing.T, acked []int64, counts map[string]int, sent int64) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no hit was acknowledged")
	}
	lost, dups := 0, 0
	for _, n := range acked {
		c := counts[fmt.Sprintf("/p/%d", n)]
		if c == 0 {
			lost++
		}
	}
	total := 0
	for path, c := range counts {
		total += c
		if c > 1 {
			dups++
			if dups < 5 {
				t.Errorf("%s stored %d times", path, c)
			}
		}
	}
	t.Logf("sent %d, acknowledged %d, rows %d, lost %d, duplicated %d", sent, len(acked), total, lost, dups)
	if lost > 0 {
		t.Errorf("%d acknowledged hits are missing from the store", lost)
	}
	if dups > 0 {
		t.Errorf("%d hits were stored more than once", dups)
	}
}

// waitFor polls until cond holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

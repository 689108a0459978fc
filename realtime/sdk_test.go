package realtime_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

type sdkLine struct {
	Ready bool           `json:"ready"`
	Topic string         `json:"topic"`
	Msg   map[string]any `json:"msg"`
}

// sdk runs tests/e2e/live-sdk.mjs: the PocketBase JS SDK under Node,
// subscribed to the sites' live topics. It returns once subscribed.
func sdk(t *testing.T, base, token string, sites ...string) <-chan sdkLine {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: skipping the JS SDK test")
	}
	dir := filepath.Join(testutil.ModuleRoot(), "tests", "e2e")
	for _, m := range []string{"pocketbase", "eventsource"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m)); err != nil {
			// Not installed here: npm ci would race with tests/e2e's own use of node_modules.
			t.Skipf("tests/e2e/node_modules/%s missing: run `npm ci` in tests/e2e (scripts/test.sh does)", m)
		}
	}
	cmd := exec.Command(node, append([]string{"live-sdk.mjs", base, token}, sites...)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the script unsubscribes and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(livetest.Wait):
			cmd.Process.Kill()
			<-done
		}
	})

	lines := make(chan sdkLine, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l sdkLine
			if err := json.Unmarshal(sc.Bytes(), &l); err == nil {
				lines <- l
			}
		}
	}()
	if l := nextLine(t, lines); !l.Ready {
		t.Fatalf("first line %+v, want ready", l)
	}
	return lines
}

func nextLine(t *testing.T, lines <-chan sdkLine) sdkLine {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the SDK script exited")
		}
		return l
	case <-time.After(livetest.Wait):
		t.Fatal("no line from the SDK script")
		return sdkLine{}
	}
}

// untilArrival waits for the arrival of visitor, returning every line before it.
func untilArrival(t *testing.T, lines <-chan sdkLine, visitor string) (sdkLine, []sdkLine) {
	t.Helper()
	var before []sdkLine
	for {
		l := nextLine(t, lines)
		if l.Msg["type"] == realtime.TypeArrival && l.Msg["visitor"] == visitor {
			return l, before
		}
		before = append(before, l)
	}
}

// TestJSSDK subscribes with the PocketBase JS SDK under Node, the way the
// dashboard does, including an option-suffixed subscription key.
func TestJSSDK(t *testing.T) {
	app, live, base := start(t, realtime.Config{})

	t.Run("authorized", func(t *testing.T) {
		lines := sdk(t, base, livetest.Token(t, app, "users", livetest.Owner), livetest.Site)
		vid := visitor()
		live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/sdk"))
		l, _ := untilArrival(t, lines, realtime.VisitorKey(livetest.Site, vid))
		if l.Topic != realtime.Topic(livetest.Site) || l.Msg["page"] != "/sdk" || l.Msg["country"] != "DE" {
			t.Fatalf("arrival %+v", l)
		}
	})

	t.Run("forbidden", func(t *testing.T) {
		lines := sdk(t, base, livetest.Token(t, app, "users", livetest.Stranger), livetest.Site, livetest.Public)
		vid, stop := visitor(), visitor()
		live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/"))
		live.Publish(livetest.Hit(livetest.Public, stop, event.Pageview, "/"))
		_, before := untilArrival(t, lines, realtime.VisitorKey(livetest.Public, stop))
		for _, l := range before {
			if l.Topic == realtime.Topic(livetest.Site) {
				t.Fatalf("forbidden topic delivered %+v", l)
			}
		}
	})
}

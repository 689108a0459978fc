package hooks_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/hooks"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

const (
	reportsURL = "/api/collections/" + hooks.ReportsCollection + "/records"
	alertsURL  = "/api/collections/" + hooks.AlertsCollection + "/records"
)

// reportsServer is rolesServer with the reports and alerts registered; the
// clock is *now. The app's own cron is stopped: the test runs the jobs.
func reportsServer(t *testing.T, fx *analyticsFixture, now *time.Time) (*tests.TestApp, *httptest.Server) {
	t.Helper()
	app := fx.app(t, 0)
	t.Cleanup(app.Cleanup)
	live, err := realtime.Register(app, realtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	clock := func() time.Time { return *now }
	for _, err := range []error{
		hooks.RegisterSites(app),
		hooks.RegisterReports(app, hooks.ReportsConfig{Store: fx.store, Dashboard: "/", Now: clock}),
		hooks.RegisterAlerts(app, hooks.AlertsConfig{Live: live, Dashboard: "/", Now: clock}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv := livetest.Serve(t, app)
	app.Cron().Stop()
	return app, srv
}

// runJob runs one of the app's cron jobs now.
func runJob(t *testing.T, app *tests.TestApp, id string) {
	t.Helper()
	for _, j := range app.Cron().Jobs() {
		if j.Id() == id {
			j.Run()
			return
		}
	}
	t.Fatalf("no cron job %q", id)
}

var unsubscribeLink = regexp.MustCompile(`https?://[^\s"<]+` + hooks.UnsubscribePath + `/([A-Za-z0-9]{40})`)

// TestReportEmail follows a weekly report: its contents against the
// reference's numbers, sent once however often the job runs, and the
// unsubscribe link that stops the next one.
func TestReportEmail(t *testing.T) {
	fx := newAnalyticsFixture(t, "sqlite")
	now := time.Date(2024, 4, 1, 6, 0, 0, 0, time.UTC) // Monday 8:00 in Berlin
	app, srv := reportsServer(t, fx, &now)

	site, err := app.FindRecordById("sites", berlinSiteID)
	if err != nil {
		t.Fatal(err)
	}
	site.Set("name", "Berlin <i>&")
	if err := app.Save(site); err != nil {
		t.Fatal(err)
	}
	res, text := call(t, srv, "POST", reportsURL, auth(memberID, t), map[string]any{"site": berlinSiteID, "frequency": "weekly"})
	wantStatus(t, "subscribe", res, text, 200)
	if !strings.Contains(text, `"user":"`+memberID+`"`) || strings.Contains(text, "token") || strings.Contains(text, "period") {
		t.Fatalf("subscription: %s", text)
	}

	runJob(t, app, "pocketlyticsReports")
	if n := app.TestMailer.TotalSend(); n != 1 {
		t.Fatalf("%d mails sent, want 1", n)
	}
	msg := app.TestMailer.LastMessage()
	if msg.To[0].Address != memberID+"@example.com" || msg.Subject != "Weekly report for Berlin <i>&: 25 March – 31 March 2024" {
		t.Fatalf("mail %q to %v", msg.Subject, msg.To)
	}

	berlin, _ := time.LoadLocation("Europe/Berlin")
	q := store.Query{SiteID: berlinSiteID, From: time.Date(2024, 3, 25, 0, 0, 0, 0, berlin), To: time.Date(2024, 4, 1, 0, 0, 0, 0, berlin), Location: berlin}
	prevQ := q
	prevQ.From, prevQ.To = time.Date(2024, 3, 18, 0, 0, 0, 0, berlin), q.From
	cur, prev := fx.ref.Overview(q), fx.ref.Overview(prevQ)
	if cur.Visitors == 0 || prev.Visitors == 0 || cur.Visitors == prev.Visitors {
		t.Fatalf("the fixture's weeks do not tell a change apart: %d and %d visitors", cur.Visitors, prev.Visitors)
	}
	pct := func(c, p int64) string { return fmt.Sprintf("%+.0f%%", math.Round(float64(c-p)*100/float64(p))) }
	want := []string{
		"Weekly report for Berlin <i>&",
		fmt.Sprintf("%-12s %10d  %s", "Visitors", cur.Visitors, pct(cur.Visitors, prev.Visitors)),
		fmt.Sprintf("%-12s %10d  %s", "Pageviews", cur.Pageviews, pct(cur.Pageviews, prev.Pageviews)),
		fmt.Sprintf("%-12s %10d  %s", "Visits", cur.Visits, pct(cur.Visits, prev.Visits)),
		fmt.Sprintf("%.1f%%", cur.BounceRate),
	}
	for i, dim := range []store.Dimension{store.DimPage, store.DimReferrer} {
		rows := fx.ref.Breakdown(q, dim, 5, 0).Rows
		if len(rows) != 5 {
			t.Fatalf("%s: %d rows in the reference", dim, len(rows))
		}
		for _, r := range rows {
			v := r.Value
			if v == "" {
				v = "Direct / none"
			}
			want = append(want, fmt.Sprintf("  %s: %d visitors\n", v, r.Visitors))
			if i == 0 && !strings.Contains(msg.HTML, "<td>"+v+"</td><td>"+fmt.Sprint(r.Visitors)+" visitors</td>") {
				t.Errorf("the HTML lacks the page %s:\n%s", v, msg.HTML)
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(msg.Text, w) {
			t.Errorf("the text lacks %q:\n%s", w, msg.Text)
		}
	}
	if !strings.Contains(msg.HTML, "Berlin &lt;i&gt;&amp;") || strings.Contains(msg.HTML, "<i>") {
		t.Errorf("the site's name is not escaped in the HTML:\n%s", msg.HTML)
	}
	m := unsubscribeLink.FindStringSubmatch(msg.Text)
	if m == nil || !strings.Contains(msg.HTML, m[0]) || msg.Headers["List-Unsubscribe"] != "<"+m[0]+">" {
		t.Fatalf("no unsubscribe link in the mail:\n%s\n%s\n%v", msg.Text, msg.HTML, msg.Headers)
	}

	t.Run("sent once", func(t *testing.T) {
		now = now.Add(time.Hour)
		runJob(t, app, "pocketlyticsReports")
		if n := app.TestMailer.TotalSend(); n != 1 {
			t.Fatalf("%d mails sent, want the one", n)
		}
		res, text := call(t, srv, "GET", reportsURL, auth(memberID, t), nil)
		if res.StatusCode != 200 || !strings.Contains(text, `"lastSent":"2024-04-01`) {
			t.Fatalf("lastSent not recorded: %s", text)
		}
	})

	t.Run("unsubscribe", func(t *testing.T) {
		link := hooks.UnsubscribePath + "/" + m[1]
		res, text := call(t, srv, "GET", hooks.UnsubscribePath+"/"+strings.Repeat("x", 40), nil, nil)
		wantStatus(t, "a wrong token", res, text, 404)
		res, text = call(t, srv, "GET", link, nil, nil)
		wantStatus(t, "the link", res, text, 200)
		if !strings.Contains(text, "Stop the weekly report for Berlin &lt;i&gt;&amp;?") || !strings.Contains(text, `method="post"`) {
			t.Fatalf("confirmation page: %s", text)
		}
		// The form posts back to the link, as a one-click unsubscribe does.
		form, err := http.PostForm(srv.URL+link, url.Values{"List-Unsubscribe": {"One-Click"}})
		if err != nil {
			t.Fatal(err)
		}
		form.Body.Close()
		if form.StatusCode != 200 {
			t.Fatalf("unsubscribe: status %d", form.StatusCode)
		}
		res, text = call(t, srv, "GET", link, nil, nil)
		wantStatus(t, "the link once used", res, text, 404)

		now = time.Date(2024, 4, 8, 6, 0, 0, 0, time.UTC)
		runJob(t, app, "pocketlyticsReports")
		if n := app.TestMailer.TotalSend(); n != 1 {
			t.Fatalf("%d mails sent after unsubscribing, want none more", n-1)
		}
	})

	t.Run("monthly", func(t *testing.T) {
		now = time.Date(2024, 4, 1, 6, 0, 0, 0, time.UTC)
		res, text := call(t, srv, "POST", reportsURL, auth(ownerID, t), map[string]any{"site": berlinSiteID, "frequency": "monthly"})
		wantStatus(t, "subscribe", res, text, 200)
		runJob(t, app, "pocketlyticsReports")
		msg := app.TestMailer.LastMessage()
		if app.TestMailer.TotalSend() != 2 || msg.To[0].Address != ownerID+"@example.com" || msg.Subject != "Monthly report for Berlin <i>&: March 2024" {
			t.Fatalf("%d mails, the last %q to %v", app.TestMailer.TotalSend(), msg.Subject, msg.To)
		}
		// February has no data: every number is new.
		if !strings.Contains(msg.Text, "new") || !strings.Contains(msg.Text, "the month before") {
			t.Fatalf("monthly text:\n%s", msg.Text)
		}
	})
}

// TestReportAndAlertRules checks who may subscribe to a site's report and
// who manages its alert, over the collections' REST API.
func TestReportAndAlertRules(t *testing.T) {
	fx := newAnalyticsFixture(t, "sqlite")
	now := time.Now()
	app, srv := reportsServer(t, fx, &now)

	res, text := call(t, srv, "POST", reportsURL, auth(memberID, t), map[string]any{"site": berlinSiteID, "frequency": "weekly"})
	wantStatus(t, "a member subscribes", res, text, 200)
	var mine struct{ Id string }
	decode(t, res, &mine)
	row := reportsURL + "/" + mine.Id

	for _, tc := range []struct {
		name, who, method, path string
		body                    map[string]any
		status                  int
	}{
		{"a stranger subscribes to the site", strangerID, "POST", reportsURL, map[string]any{"site": berlinSiteID, "frequency": "weekly"}, 400},
		{"subscribing someone else", adminID, "POST", reportsURL, map[string]any{"site": berlinSiteID, "frequency": "weekly", "user": ownerID}, 400},
		{"a bad frequency", ownerID, "POST", reportsURL, map[string]any{"site": berlinSiteID, "frequency": "daily"}, 400},
		{"the owner reads my row", ownerID, "GET", row, nil, 404},
		{"the owner edits my row", ownerID, "PATCH", row, map[string]any{"frequency": "monthly"}, 404},
		{"the owner deletes my row", ownerID, "DELETE", row, nil, 404},
		{"I set my token (ignored)", memberID, "PATCH", row, map[string]any{"token": strings.Repeat("a", 40)}, 200},
		{"I set lastSent", memberID, "PATCH", row, map[string]any{"lastSent": "2024-01-01 00:00:00.000Z"}, 404},
		{"I move my row to another site", memberID, "PATCH", row, map[string]any{"site": subsSiteID}, 404},
		{"I change my frequency", memberID, "PATCH", row, map[string]any{"frequency": "monthly"}, 200},
		{"a member creates an alert", memberID, "POST", alertsURL, map[string]any{"site": berlinSiteID, "threshold": 5, "email": true}, 400},
		{"an alert without a channel", adminID, "POST", alertsURL, map[string]any{"site": berlinSiteID, "threshold": 5}, 400},
		{"an ftp webhook", adminID, "POST", alertsURL, map[string]any{"site": berlinSiteID, "threshold": 5, "webhook": "ftp://example.com/x"}, 400},
		{"a zero threshold", adminID, "POST", alertsURL, map[string]any{"site": berlinSiteID, "threshold": 0, "email": true}, 400},
		{"an admin creates an alert", adminID, "POST", alertsURL, map[string]any{"site": berlinSiteID, "threshold": 5, "webhook": "https://hooks.example.com/x"}, 200},
		{"a second alert of the site", ownerID, "POST", alertsURL, map[string]any{"site": berlinSiteID, "threshold": 9, "email": true}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, text := call(t, srv, tc.method, tc.path, auth(tc.who, t), tc.body)
			wantStatus(t, tc.name, res, text, tc.status)
		})
	}

	if r, err := app.FindRecordById(hooks.ReportsCollection, mine.Id); err != nil || len(r.GetString("token")) != 40 || r.GetString("token") == strings.Repeat("a", 40) {
		t.Errorf("the unsubscribe token was taken from the client or lost: %v %v", r, err)
	}
	for who, want := range map[string]int{ownerID: 0, memberID: 1, strangerID: 0} {
		_, text := call(t, srv, "GET", reportsURL, auth(who, t), nil)
		if !strings.Contains(text, fmt.Sprintf(`"totalItems":%d`, want)) {
			t.Errorf("%s lists reports: %s, want %d", who, text, want)
		}
	}
	for who, want := range map[string]int{ownerID: 1, adminID: 1, memberID: 0, strangerID: 0} {
		_, text := call(t, srv, "GET", alertsURL, auth(who, t), nil)
		if !strings.Contains(text, fmt.Sprintf(`"totalItems":%d`, want)) {
			t.Errorf("%s lists alerts: %s, want %d", who, text, want)
		}
	}
}

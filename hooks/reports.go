package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"math"
	"net/http"
	"net/mail"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/mailer"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// ReportsCollection holds the email report subscriptions, by its fixed id.
const ReportsCollection = migrations.ReportsCollectionId

// UnsubscribePath is the unsubscribe link of every report mail:
// GET UnsubscribePath/{token} asks for a confirmation, POST unsubscribes
// (also as the one-click List-Unsubscribe-Post of RFC 8058).
const UnsubscribePath = "/api/analytics/reports/unsubscribe"

// ReportsConfig configures the email reports.
type ReportsConfig struct {
	// Store answers the reports' queries (required).
	Store store.Querier
	// Dashboard is where the dashboard is served ("/" or "/analytics/"),
	// for the mail's link to the site.
	Dashboard string
	// Now returns the current time (default time.Now); tests pin it.
	Now func() time.Time
}

// RegisterReports binds the hooks of the reports collection (created by
// the migrations package), the unsubscribe routes and the cron job
// "pocketlyticsReports" (config.ReportsSchedule) that mails due reports
// through the app's mailer (SMTP in the admin UI's settings):
//
//   - a weekly report goes out on Monday for the previous Monday to
//     Sunday, a monthly one on the 1st for the previous month, both in the
//     site's time zone, with visitors, visits, pageviews, bounce rate, the
//     top pages and sources and the change against the period before;
//   - each subscription records the period it last sent, claimed before the
//     mail goes out, so neither a restart nor a second node sends it twice
//     (a failed mail gives the claim back for the next run);
//   - a subscription whose user no longer reads the site is removed.
//
// The unsubscribe link carries a random token stored on the subscription:
// it needs no signing secret (PocketBase has no app-wide one) and dies
// with the row.
func RegisterReports(app core.App, cfg ReportsConfig) error {
	if cfg.Store == nil {
		return errors.New("hooks: RegisterReports needs a Store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &reporter{app: app, cfg: cfg}

	app.OnRecordCreateRequest(ReportsCollection).BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Auth != nil && !e.HasSuperuserAuth() {
			e.Record.Set("user", e.Auth.Id)
		}
		return e.Next()
	})
	app.OnRecordCreate(ReportsCollection).BindFunc(func(e *core.RecordEvent) error {
		e.Record.Set("token", access.NewToken())
		e.Record.Set("period", "")
		return e.Next()
	})
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET(UnsubscribePath+"/{token}", unsubscribePage)
		se.Router.POST(UnsubscribePath+"/{token}", unsubscribe)
		return se.Next()
	})
	return app.Cron().Add("pocketlyticsReports", config.ReportsSchedule, r.run)
}

type reporter struct {
	app core.App
	cfg ReportsConfig
}

// reportPeriod is the range a report covers, [From, To) in the site's
// time zone, and the one before it for the comparison.
type reportPeriod struct {
	From, To, PrevFrom time.Time
	// Key names the period, so a subscription remembers which it sent.
	Key string
}

// dueReport returns the period a report of frequency freq sent at now
// covers, or false when none is due: weekly reports are due on Mondays,
// monthly ones on the 1st, in loc.
func dueReport(freq string, now time.Time, loc *time.Location) (reportPeriod, bool) {
	local := now.In(loc)
	y, m, d := local.Date()
	switch freq {
	case migrations.Weekly:
		if local.Weekday() != time.Monday {
			return reportPeriod{}, false
		}
		to := time.Date(y, m, d, 0, 0, 0, 0, loc)
		from := time.Date(y, m, d-7, 0, 0, 0, 0, loc)
		return reportPeriod{From: from, To: to, PrevFrom: time.Date(y, m, d-14, 0, 0, 0, 0, loc),
			Key: freq + ":" + from.Format(time.DateOnly)}, true
	case migrations.Monthly:
		if d != 1 {
			return reportPeriod{}, false
		}
		from := time.Date(y, m-1, 1, 0, 0, 0, 0, loc)
		return reportPeriod{From: from, To: time.Date(y, m, 1, 0, 0, 0, 0, loc), PrevFrom: time.Date(y, m-2, 1, 0, 0, 0, 0, loc),
			Key: freq + ":" + from.Format("2006-01")}, true
	}
	return reportPeriod{}, false
}

// run sends every due report; one failing does not hold up the others.
func (r *reporter) run() {
	subs, err := r.app.FindAllRecords(ReportsCollection)
	if err != nil {
		r.app.Logger().Error("reports: listing the subscriptions failed", "error", err)
		return
	}
	for _, sub := range subs {
		if err := r.send(sub); err != nil {
			r.app.Logger().Error("reports: a report was not sent; the next run tries again", "report", sub.Id, "error", err)
		}
	}
}

func (r *reporter) send(sub *core.Record) error {
	site, err := r.app.FindRecordById(sitecache.Collection, sub.GetString("site"))
	if err != nil {
		return err
	}
	user, err := r.app.FindRecordById("users", sub.GetString("user"))
	if err != nil {
		return err
	}
	if roleOf(site, user.Id) == "" {
		r.app.Logger().Info("reports: removing the subscription of a user who left the site", "report", sub.Id, "site", site.Id)
		return r.app.Delete(sub)
	}
	loc := siteLocation(site)
	now := r.cfg.Now()
	p, ok := dueReport(sub.GetString("frequency"), now, loc)
	if !ok || sub.GetString("period") == p.Key {
		return nil
	}
	old := sub.GetString("period")
	if claimed, err := r.setPeriod(sub, old, p.Key); err != nil || !claimed {
		return err
	}
	msg, err := r.message(sub, site, user, p)
	if err == nil {
		err = r.app.NewMailClient().Send(msg)
	}
	if err != nil {
		if _, rerr := r.setPeriod(sub, p.Key, old); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	sent, err := types.ParseDateTime(now)
	if err != nil {
		return err
	}
	_, err = r.app.DB().Update(sub.Collection().Name, dbx.Params{"lastSent": sent.String()}, dbx.HashExp{"id": sub.Id}).Execute()
	return err
}

// setPeriod moves a subscription's period from one key to another and
// reports whether this call did (another node may have been first).
func (r *reporter) setPeriod(sub *core.Record, from, to string) (bool, error) {
	res, err := r.app.DB().Update(sub.Collection().Name, dbx.Params{"period": to},
		dbx.HashExp{"id": sub.Id, "period": from}).Execute()
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// reportData is what a report mail shows. Values from hits (pages,
// sources, the site's name) are escaped by html/template.
type reportData struct {
	Site, Title, Range      string
	Stats                   []reportStat
	Pages, Sources          []reportRow
	Dashboard, Unsubscribe  string
	AppName, PreviousPeriod string
}

type reportStat struct{ Label, Value, Change string }

type reportRow struct {
	Value    string
	Visitors int64
}

func (r *reporter) message(sub, site, user *core.Record, p reportPeriod) (*mailer.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := store.Query{SiteID: site.Id, From: p.From, To: p.To, Location: p.From.Location()}
	prevQ := q
	prevQ.From, prevQ.To = p.PrevFrom, p.From
	cur, err := r.cfg.Store.Overview(ctx, q)
	if err != nil {
		return nil, err
	}
	prev, err := r.cfg.Store.Overview(ctx, prevQ)
	if err != nil {
		return nil, err
	}
	pages, err := r.cfg.Store.Breakdown(ctx, q, store.DimPage, config.ReportRows, 0)
	if err != nil {
		return nil, err
	}
	sources, err := r.cfg.Store.Breakdown(ctx, q, store.DimReferrer, config.ReportRows, 0)
	if err != nil {
		return nil, err
	}

	appURL := strings.TrimRight(r.app.Settings().Meta.AppURL, "/")
	name := strings.Join(strings.Fields(site.GetString("name")), " ")
	last := p.To.AddDate(0, 0, -1)
	d := reportData{
		Site:  name,
		Title: "Weekly",
		Range: p.From.Format("2 January") + " – " + last.Format("2 January 2006"),
		Stats: []reportStat{
			{"Visitors", fmt.Sprint(cur.Visitors), change(cur.Visitors, prev.Visitors)},
			{"Visits", fmt.Sprint(cur.Visits), change(cur.Visits, prev.Visits)},
			{"Pageviews", fmt.Sprint(cur.Pageviews), change(cur.Pageviews, prev.Pageviews)},
			{"Bounce rate", fmt.Sprintf("%.1f%%", cur.BounceRate), fmt.Sprintf("%+.1f pts", cur.BounceRate-prev.BounceRate)},
		},
		Pages:          rows(pages.Rows, "(none)"),
		Sources:        rows(sources.Rows, "Direct / none"),
		Dashboard:      appURL + r.cfg.Dashboard + "sites/" + site.Id,
		Unsubscribe:    appURL + UnsubscribePath + "/" + sub.GetString("token"),
		AppName:        r.app.Settings().Meta.AppName,
		PreviousPeriod: "the week before",
	}
	if prev.Visits == 0 {
		d.Stats[3].Change = "new"
	}
	if sub.GetString("frequency") == migrations.Monthly {
		d.Title, d.Range, d.PreviousPeriod = "Monthly", p.From.Format("January 2006"), "the month before"
	}
	var html, text bytes.Buffer
	if err := reportHTML.Execute(&html, d); err != nil {
		return nil, err
	}
	if err := reportText.Execute(&text, d); err != nil {
		return nil, err
	}
	return &mailer.Message{
		From:    sender(r.app),
		To:      []mail.Address{{Address: user.Email()}},
		Subject: fmt.Sprintf("%s report for %s: %s", d.Title, name, d.Range),
		HTML:    html.String(),
		Text:    text.String(),
		Headers: map[string]string{
			"List-Unsubscribe":      "<" + d.Unsubscribe + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}, nil
}

// change is the relative change from prev to cur, in whole percent.
func change(cur, prev int64) string {
	switch {
	case prev == cur:
		return "±0%"
	case prev == 0:
		return "new"
	}
	return fmt.Sprintf("%+.0f%%", math.Round(float64(cur-prev)*100/float64(prev)))
}

func rows(in []store.Row, empty string) []reportRow {
	out := make([]reportRow, len(in))
	for i, r := range in {
		out[i] = reportRow{Value: r.Value, Visitors: r.Visitors}
		if r.Value == "" {
			out[i].Value = empty
		}
	}
	return out
}

var reportHTML = htmltemplate.Must(htmltemplate.New("report").Parse(`<h2>{{.Title}} report for {{.Site}}</h2>
<p>{{.Range}}, compared with {{.PreviousPeriod}}.</p>
<table cellpadding="6">{{range .Stats}}
<tr><td>{{.Label}}</td><td><strong>{{.Value}}</strong></td><td>{{.Change}}</td></tr>{{end}}
</table>
<h3>Top pages</h3>
<table cellpadding="4">{{range .Pages}}<tr><td>{{.Value}}</td><td>{{.Visitors}} visitors</td></tr>{{else}}<tr><td>No pageviews.</td></tr>{{end}}</table>
<h3>Top sources</h3>
<table cellpadding="4">{{range .Sources}}<tr><td>{{.Value}}</td><td>{{.Visitors}} visitors</td></tr>{{else}}<tr><td>No visits.</td></tr>{{end}}</table>
<p><a href="{{.Dashboard}}">Open the dashboard</a></p>
<p style="color:#777;font-size:12px">You receive this because you subscribed on {{.AppName}}. <a href="{{.Unsubscribe}}">Unsubscribe</a></p>
`))

var reportText = texttemplate.Must(texttemplate.New("report").Parse(`{{.Title}} report for {{.Site}}
{{.Range}}, compared with {{.PreviousPeriod}}.
{{range .Stats}}
{{printf "%-12s" .Label}} {{printf "%10s" .Value}}  {{.Change}}{{end}}

Top pages
{{range .Pages}}  {{.Value}}: {{.Visitors}} visitors
{{else}}  No pageviews.
{{end}}
Top sources
{{range .Sources}}  {{.Value}}: {{.Visitors}} visitors
{{else}}  No visits.
{{end}}
Dashboard: {{.Dashboard}}

You receive this because you subscribed on {{.AppName}}. Unsubscribe: {{.Unsubscribe}}
`))

// findSubscription returns the subscription of an unsubscribe token.
func findSubscription(app core.App, token string) (*core.Record, error) {
	if len(token) != access.TokenLength {
		return nil, errors.New("hooks: no such subscription")
	}
	return app.FindFirstRecordByData(ReportsCollection, "token", token)
}

const noSubscription = "This unsubscribe link is unknown: the report was already cancelled."

var unsubscribeHTML = htmltemplate.Must(htmltemplate.New("unsubscribe").Parse(`<!doctype html>
<meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Unsubscribe</title>
{{if .Done}}<p>You are unsubscribed: no more {{.Frequency}} reports for {{.Site}}.</p>
{{else}}<form method="post"><p>Stop the {{.Frequency}} report for {{.Site}}?</p><button>Unsubscribe</button></form>{{end}}
`))

type unsubscribeData struct {
	Site, Frequency string
	Done            bool
}

func unsubscribePage(e *core.RequestEvent) error {
	return unsubscribeReply(e, false)
}

func unsubscribe(e *core.RequestEvent) error {
	return unsubscribeReply(e, true)
}

func unsubscribeReply(e *core.RequestEvent, do bool) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	sub, err := findSubscription(e.App, e.Request.PathValue("token"))
	if err != nil {
		return e.NotFoundError(noSubscription, nil)
	}
	d := unsubscribeData{Frequency: sub.GetString("frequency"), Done: do}
	if site, err := e.App.FindRecordById(sitecache.Collection, sub.GetString("site")); err == nil {
		d.Site = site.GetString("name")
	}
	if do {
		if err := e.App.Delete(sub); err != nil {
			return e.InternalServerError("", err)
		}
	}
	var b bytes.Buffer
	if err := unsubscribeHTML.Execute(&b, d); err != nil {
		return e.InternalServerError("", err)
	}
	return e.HTML(http.StatusOK, b.String())
}

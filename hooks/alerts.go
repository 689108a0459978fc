package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/mailer"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
	"github.com/pocketlytics/pocketlytics/migrations"
	"github.com/pocketlytics/pocketlytics/realtime"
)

// AlertsCollection holds the sites' traffic alerts, by its fixed id.
const AlertsCollection = migrations.AlertsCollectionId

// AlertsConfig configures the traffic alerts.
type AlertsConfig struct {
	// Live gives the live visitor counts the thresholds are compared with
	// (required).
	Live *realtime.Live
	// Client delivers the webhooks (default: webhookClient, which reaches
	// public addresses only).
	Client *http.Client
	// Dashboard is where the dashboard is served ("/" or "/analytics/"),
	// for the mail's link to the live view.
	Dashboard string
	// Now returns the current time (default time.Now); tests pin it.
	Now func() time.Time
}

// RegisterAlerts binds the validation of the alerts collection (created by
// the migrations package) and the cron job "pocketlyticsAlerts"
// (config.AlertsSchedule, once a minute) that fires them: when a site's
// live count reaches its alert's threshold from below, a mail goes to the
// site's owner and admins and/or a JSON POST to the webhook, at most once
// per config.AlertCooldown per site. When it last fired is stored on the
// alert, so a restart does not fire it again; the first check after a
// start only notes which side of the threshold each site is on.
func RegisterAlerts(app core.App, cfg AlertsConfig) error {
	if cfg.Live == nil {
		return errors.New("hooks: RegisterAlerts needs a realtime.Live")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = webhookClient()
	}
	a := &alerter{app: app, cfg: cfg, above: map[string]bool{}}
	app.OnRecordValidate(AlertsCollection).BindFunc(func(e *core.RecordEvent) error {
		if err := validateAlert(e.Record); err != nil {
			return err
		}
		return e.Next()
	})
	return app.Cron().Add("pocketlyticsAlerts", config.AlertsSchedule, a.check)
}

func validateAlert(alert *core.Record) error {
	hook := alert.GetString("webhook")
	if hook != "" {
		u, err := url.Parse(hook)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return validation.Errors{"webhook": validation.NewError("validation_invalid_webhook", "The webhook must be an http or https URL.")}
		}
	}
	if hook == "" && !alert.GetBool("email") {
		return validation.Errors{"email": validation.NewError("validation_alert_channel", "Choose email, a webhook or both.")}
	}
	return nil
}

type alerter struct {
	app core.App
	cfg AlertsConfig

	mu sync.Mutex
	// above tells, per alert id, whether the count was at or above the
	// threshold at the last check.
	above map[string]bool
}

// check compares every site's live count with its alert's threshold.
func (a *alerter) check() {
	a.mu.Lock()
	defer a.mu.Unlock()
	alerts, err := a.app.FindAllRecords(AlertsCollection)
	if err != nil {
		a.app.Logger().Error("alerts: listing the alerts failed", "error", err)
		return
	}
	sites := make([]string, 0, len(alerts))
	for _, al := range alerts {
		sites = append(sites, al.GetString("site"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), config.WebhookTimeout)
	counts, err := a.cfg.Live.Counts(ctx, sites...)
	cancel()
	if err != nil {
		a.app.Logger().Warn("alerts: reading the live counts failed", "error", err)
		return
	}
	seen := make(map[string]bool, len(alerts))
	for _, al := range alerts {
		seen[al.Id] = true
		count := counts[al.GetString("site")]
		above := count >= al.GetInt("threshold")
		was, known := a.above[al.Id]
		a.above[al.Id] = above
		if above && known && !was {
			a.fire(al, count)
		}
	}
	for id := range a.above {
		if !seen[id] {
			delete(a.above, id)
		}
	}
}

// fire claims the alert's hour (so two nodes or a quick recrossing do not
// fire it twice) and delivers it.
func (a *alerter) fire(alert *core.Record, count int) {
	now := a.cfg.Now().UTC()
	at, _ := types.ParseDateTime(now)
	since, _ := types.ParseDateTime(now.Add(-config.AlertCooldown))
	res, err := a.app.DB().Update(alert.Collection().Name, dbx.Params{"lastFired": at.String()}, dbx.And(
		dbx.HashExp{"id": alert.Id},
		dbx.Or(dbx.HashExp{"lastFired": ""}, dbx.NewExp("[[lastFired]] <= {:since}", dbx.Params{"since": since.String()})),
	)).Execute()
	if err != nil {
		a.app.Logger().Error("alerts: claiming an alert failed", "alert", alert.Id, "error", err)
		return
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return
	}
	site, err := a.app.FindRecordById(sitecache.Collection, alert.GetString("site"))
	if err != nil {
		return
	}
	d := alertPayload{
		Type:      "traffic_alert",
		Site:      *siteOf(site),
		Threshold: alert.GetInt("threshold"),
		Count:     count,
		At:        now,
		Dashboard: strings.TrimRight(a.app.Settings().Meta.AppURL, "/") + a.cfg.Dashboard + "sites/" + site.Id + "/live",
	}
	if alert.GetBool("email") {
		a.mail(site, d)
	}
	if hook := alert.GetString("webhook"); hook != "" {
		if err := a.post(hook, d); err != nil {
			a.app.Logger().Warn("alerts: the webhook failed", "alert", alert.Id, "site", site.Id, "error", err)
		}
	}
}

// webhookClient posts with config.WebhookTimeout, follows no redirects and
// dials public addresses only: a site's admin must not make the server
// call its own network (loopback, private, link-local ranges).
func webhookClient() *http.Client {
	dialer := &net.Dialer{
		Timeout: config.WebhookTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			ip = ip.Unmap()
			if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() {
				return fmt.Errorf("hooks: webhooks may not reach %s", ip)
			}
			return nil
		},
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = dialer.DialContext
	return &http.Client{
		Timeout:       config.WebhookTimeout,
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// alertPayload is the JSON body of an alert's webhook.
type alertPayload struct {
	Type      string    `json:"type"`
	Site      shareSite `json:"site"`
	Threshold int       `json:"threshold"`
	Count     int       `json:"count"`
	At        time.Time `json:"at"`
	Dashboard string    `json:"dashboard"`
}

// mail sends the alert to the site's owner and each admin, one mail each.
func (a *alerter) mail(site *core.Record, d alertPayload) {
	ids := slices.Concat([]string{site.GetString("owner")}, site.GetStringSlice("admins"))
	users, err := a.app.FindRecordsByIds("users", ids)
	if err != nil {
		a.app.Logger().Error("alerts: finding the recipients failed", "site", site.Id, "error", err)
		return
	}
	name := strings.Join(strings.Fields(d.Site.Name), " ")
	subject := fmt.Sprintf("%s: %d visitors online", name, d.Count)
	text := fmt.Sprintf("%s has %d live visitors, at or above your alert's threshold of %d.\n\nWatch them live: %s\n",
		name, d.Count, d.Threshold, d.Dashboard)
	body := fmt.Sprintf(`<p><strong>%s</strong> has %d live visitors, at or above your alert's threshold of %d.</p><p><a href="%s">Watch them live</a></p>`,
		html.EscapeString(name), d.Count, d.Threshold, html.EscapeString(d.Dashboard))
	for _, u := range users {
		err := a.app.NewMailClient().Send(&mailer.Message{
			From:    sender(a.app),
			To:      []mail.Address{{Address: u.Email()}},
			Subject: subject,
			HTML:    body,
			Text:    text,
		})
		if err != nil {
			a.app.Logger().Warn("alerts: the alert mail was not sent", "site", site.Id, "user", u.Id, "error", err)
		}
	}
}

// post delivers the webhook once: a failure is logged, not retried, so a
// dead endpoint costs one request per firing.
func (a *alerter) post(hook string, d alertPayload) error {
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), config.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Pocketlytics-Alert")
	res, err := a.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("status %s", res.Status)
	}
	return nil
}

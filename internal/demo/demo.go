// Package demo fills a running Pocketlytics with simulated visitors from
// around the world, so the dashboard and its live view have something to
// show within seconds:
//
//	pocketlytics demo --url http://127.0.0.1:8090
//
// The hits go through the app's real ingest route. Each simulated visitor
// has an address in some country, sent as X-Forwarded-For, which the app
// only believes when PocketBase is told to trust that header (Settings →
// Application → "User IP proxy headers"). Run against the local data
// directory, the command uses the first superuser to set that, to create
// the demo site (domain demo.pocketlytics.local) and, if there is no user
// yet, a demo user to own it.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/security"
	"github.com/spf13/cobra"

	"github.com/pocketlytics/pocketlytics/migrations"
)

// NewCommand returns the `demo` command. app is the local app; its data
// directory must be the one the server at --url runs on, unless --token
// gives a superuser token for that server.
func NewCommand(app core.App) *cobra.Command {
	var (
		base     string
		token    string
		siteID   string
		rate     float64
		initial  int
		speed    float64
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Sends simulated visitors from around the world to a running Pocketlytics",
		Long: "Creates the demo site (" + Domain + ") if needed and sends realistic visitors to the\n" +
			"running app's /api/collect until interrupted: arrivals, page views, heartbeats,\n" +
			"custom events and leaves, from addresses in many countries (X-Forwarded-For).",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			collect, err := collectURL(base)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			out := cmd.OutOrStdout()

			if siteID == "" {
				if token == "" {
					if token, err = localSuperuserToken(app); err != nil {
						return err
					}
				}
				s := &setup{base: strings.TrimRight(base, "/"), token: token, client: &http.Client{Timeout: 10 * time.Second}, log: out}
				if err := s.trustForwardedFor(ctx); err != nil {
					return err
				}
				if siteID, err = s.site(ctx); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "demo: sending visitors to site %s; watch %s/sites/%s/live (Ctrl-C stops)\n", siteID, strings.TrimRight(base, "/"), siteID)

			sim := &Simulator{CollectURL: collect, Site: siteID, Rate: rate, Initial: initial, Speed: speed}
			done := make(chan struct{})
			go func() {
				tick := time.NewTicker(10 * time.Second)
				defer tick.Stop()
				for {
					select {
					case <-done:
						return
					case <-tick.C:
						online, sent, refused, last := sim.Stats()
						line := fmt.Sprintf("demo: %d visitors online, %d hits sent", online, sent)
						if refused > 0 {
							line += fmt.Sprintf(", %d refused (last: %s)", refused, last)
						}
						fmt.Fprintln(out, line)
					}
				}
			}()
			err = sim.Run(ctx)
			close(done)
			_, sent, refused, _ := sim.Stats()
			fmt.Fprintf(out, "demo: stopped after %d hits (%d refused)\n", sent, refused)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "url", "http://127.0.0.1:8090", "base URL of the running app")
	f.StringVar(&token, "token", "", "superuser auth token for --url (default: minted from the local data dir's first superuser)")
	f.StringVar(&siteID, "site", "", "send to this existing site id and skip all set-up")
	f.Float64Var(&rate, "rate", 30, "new visitors per minute")
	f.IntVar(&initial, "initial", 12, "visitors arriving in the first seconds")
	f.Float64Var(&speed, "speed", 1, "time compression: 2 halves every dwell time and gap")
	f.DurationVar(&duration, "duration", 0, "stop after this long (default: until interrupted)")
	return cmd
}

// localSuperuserToken mints an auth token for the first superuser of the
// local data directory; the server accepts it when it runs on the same one.
func localSuperuserToken(app core.App) (string, error) {
	records, err := app.FindRecordsByFilter(core.CollectionNameSuperusers, "", "created", 1, 0)
	if err != nil || len(records) == 0 {
		return "", errors.New("demo: no superuser in this data directory; create one with `pocketlytics superuser upsert EMAIL PASSWORD` or pass --token")
	}
	return records[0].NewAuthToken()
}

// setup prepares the server over its REST API, so that the running
// process's caches (settings, sites) see the changes.
type setup struct {
	base   string
	token  string
	client *http.Client
	log    io.Writer
}

func (s *setup) call(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", s.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("demo: %s %s: %w (is the app running at %s?)", method, path, err, s.base)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("demo: %s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// trustForwardedFor makes the app take the client address from
// X-Forwarded-For, which is how the simulated visitors get their countries.
func (s *setup) trustForwardedFor(ctx context.Context) error {
	var settings struct {
		TrustedProxy struct {
			Headers       []string `json:"headers"`
			UseLeftmostIP bool     `json:"useLeftmostIP"`
		} `json:"trustedProxy"`
	}
	if err := s.call(ctx, http.MethodGet, "/api/settings", nil, &settings); err != nil {
		return err
	}
	headers := settings.TrustedProxy.Headers
	if slices.ContainsFunc(headers, func(h string) bool { return strings.EqualFold(h, "X-Forwarded-For") }) {
		return nil
	}
	headers = append(headers, "X-Forwarded-For")
	fmt.Fprintln(s.log, "demo: trusting the X-Forwarded-For header (PocketBase settings → trusted proxy headers)")
	return s.call(ctx, http.MethodPatch, "/api/settings", map[string]any{
		"trustedProxy": map[string]any{"headers": headers, "useLeftmostIP": settings.TrustedProxy.UseLeftmostIP},
	}, nil)
}

type record struct {
	ID string `json:"id"`
}

type list struct {
	Items []record `json:"items"`
}

// site returns the demo site's id, creating the site (and a user to own it
// when there is none) the first time.
func (s *setup) site(ctx context.Context) (string, error) {
	var found list
	q := url.Values{"filter": {fmt.Sprintf("domains ~ '%s'", Domain)}, "perPage": {"1"}}
	if err := s.call(ctx, http.MethodGet, "/api/collections/"+migrations.SitesCollectionId+"/records?"+q.Encode(), nil, &found); err != nil {
		return "", err
	}
	if len(found.Items) > 0 {
		return found.Items[0].ID, nil
	}

	owner, err := s.owner(ctx)
	if err != nil {
		return "", err
	}
	var site record
	err = s.call(ctx, http.MethodPost, "/api/collections/"+migrations.SitesCollectionId+"/records", map[string]any{
		"name":     "Demo",
		"domains":  []string{Domain},
		"timezone": "UTC",
		"owner":    owner,
	}, &site)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(s.log, "demo: created the demo site %s (%s)\n", site.ID, Domain)
	return site.ID, nil
}

// owner is the first user, or a new demo user when there is none.
func (s *setup) owner(ctx context.Context) (string, error) {
	var users list
	if err := s.call(ctx, http.MethodGet, "/api/collections/users/records?sort=created&perPage=1", nil, &users); err != nil {
		return "", err
	}
	if len(users.Items) > 0 {
		return users.Items[0].ID, nil
	}
	password := security.RandomString(16)
	var user record
	err := s.call(ctx, http.MethodPost, "/api/collections/users/records", map[string]any{
		"email": "demo@" + Domain, "password": password, "passwordConfirm": password, "verified": true,
	}, &user)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(s.log, "demo: created the user demo@%s with the password %s\n", Domain, password)
	return user.ID, nil
}

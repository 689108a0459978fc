package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/config"
	"github.com/pocketlytics/pocketlytics/internal/enrich/geo"
)

// geoDownloadRetry is how long after a failed download the next one starts.
const geoDownloadRetry = 10 * time.Minute

// geoSource tracks where the location database comes from, for the start
// notice and health: "file" (Config.GeoIPDB), "embedded", "downloaded",
// "downloading" or "none".
type geoSource struct {
	db      *geo.DB
	state   atomic.Value // string
	dest    string       // where to download to; "" when nothing is to be fetched
	openErr error        // why Config.GeoIPDB could not be opened

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// openGeo opens the configured database, else the embedded one, else one
// downloaded by an earlier start; without any it returns an empty database
// that start fills by downloading (unless Config.NoGeoIPDownload). A
// configured database that cannot be opened is a fault for the operator's
// log, not a reason to refuse hits: the fallbacks stand in meanwhile.
func openGeo(app core.App, cfg Config) (*geo.DB, *geoSource) {
	s := &geoSource{}
	if cfg.GeoIPDB != "" {
		db, err := geo.Open(cfg.GeoIPDB)
		if err == nil {
			s.db = db
			s.state.Store("file")
			return s.db, s
		}
		s.openErr = err
	}
	if geo.Embedded() {
		if db, err := geo.Open(""); err == nil {
			s.db = db
			s.state.Store("embedded")
			return s.db, s
		}
	}
	s.db = &geo.DB{}
	path := filepath.Join(app.DataDir(), config.GeoIPFile)
	if _, err := os.Stat(path); err == nil {
		if err := s.db.Load(path); err == nil {
			s.state.Store("downloaded")
			return s.db, s
		}
		// A damaged file: fetch it again.
	}
	s.state.Store("none")
	if !cfg.NoGeoIPDownload {
		s.dest = path
	}
	return s.db, s
}

// start says at start when locations are unknown and fetches the database
// in the background when there is none.
func (s *geoSource) start(app core.App, configured string) {
	if s.openErr != nil {
		app.Logger().Error("geo: the configured database cannot be opened; using the country database instead",
			slog.String("path", configured), slog.String("error", s.openErr.Error()))
	}
	if s.dest == "" {
		if s.String() == "none" {
			notice(app, "Pocketlytics has no location database: every visitor's location is unknown. "+
				"Set GEOIP_DB (Config.GeoIPDB), or unset NO_GEOIP_DOWNLOAD to download the country database.")
		}
		return
	}
	s.state.Store("downloading")
	notice(app, fmt.Sprintf("Pocketlytics: downloading the country database (CC0, ip-location-db) to %s; "+
		"locations are unknown until it is in (NO_GEOIP_DOWNLOAD=true turns this off).", s.dest))

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		client := &http.Client{Timeout: 2 * time.Minute}
		for {
			err := geo.Download(ctx, client, geo.Country, s.dest)
			if err == nil {
				err = s.db.Load(s.dest)
			}
			if err == nil {
				s.state.Store("downloaded")
				app.Logger().Info("Pocketlytics: country database downloaded", "path", s.dest)
				return
			}
			if errors.Is(ctx.Err(), context.Canceled) {
				return
			}
			s.state.Store("none")
			notice(app, fmt.Sprintf("Pocketlytics: downloading the country database failed, retrying in %s: %v",
				geoDownloadRetry, err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(geoDownloadRetry):
			}
		}
	}()
}

// stop ends a download in progress.
func (s *geoSource) stop() {
	s.stopOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
	})
}

// String is the state, for health.
func (s *geoSource) String() string { return s.state.Load().(string) }

// notice logs msg as a warning in the app's logs and, so that an operator
// starting the server sees it, on stderr (where dev mode already prints logs).
func notice(app core.App, msg string) {
	app.Logger().Warn(msg)
	if !app.IsDev() {
		fmt.Fprintln(os.Stderr, msg)
	}
}

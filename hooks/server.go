package hooks

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
)

// ServerConfig bounds what one client can hold of the HTTP server. Zero
// values select the defaults.
type ServerConfig struct {
	// HeaderTimeout is how long a connection may take to send a request's
	// headers (default 10s; PocketBase's own is a minute).
	HeaderTimeout time.Duration

	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long (default 60s; PocketBase's own is five minutes).
	IdleTimeout time.Duration

	// IngestBodyTimeout is how long the ingest route waits for a hit's body
	// (default 10s): at most 8 KiB, which needs seconds on the slowest link,
	// where other routes keep PocketBase's five minutes for uploads.
	IngestBodyTimeout time.Duration

	// MaxConnsPerAddr bounds the open connections from one client address
	// (default 512; negative: no bound). Behind a reverse proxy every
	// connection comes from the proxy: keep it above the proxy's pool.
	MaxConnsPerAddr int
}

// Defaults of ServerConfig.
const (
	DefaultHeaderTimeout     = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultIngestBodyTimeout = 10 * time.Second
	DefaultMaxConnsPerAddr   = 512
)

func (c ServerConfig) withDefaults() ServerConfig {
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.IngestBodyTimeout <= 0 {
		c.IngestBodyTimeout = DefaultIngestBodyTimeout
	}
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	return c
}

// RegisterServer sets the server's deadlines and the bound of connections
// per client address when app serves, so that idle or stalled connections
// from one client cannot use up the process's file descriptors.
func RegisterServer(app core.App, cfg ServerConfig) {
	cfg = cfg.withDefaults()
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Id: "pocketlyticsServer",
		Func: func(e *core.ServeEvent) error {
			e.Server.ReadHeaderTimeout = cfg.HeaderTimeout
			e.Server.IdleTimeout = cfg.IdleTimeout
			e.Router.BindFunc(func(re *core.RequestEvent) error {
				if re.Request.URL.Path == CollectPath {
					_ = http.NewResponseController(re.Response).SetReadDeadline(time.Now().Add(cfg.IngestBodyTimeout))
				}
				return re.Next()
			})
			if cfg.MaxConnsPerAddr > 0 && e.Listener == nil {
				addr := e.Server.Addr
				if addr == "" {
					addr = ":http"
				}
				l, err := net.Listen("tcp", addr)
				if err != nil {
					return err
				}
				e.Listener = &perAddrListener{Listener: l, max: cfg.MaxConnsPerAddr, open: map[string]int{}}
			}
			return e.Next()
		},
	})
}

// perAddrListener closes at once the connections from an address that
// already holds max open ones.
type perAddrListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

func (l *perAddrListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		full := l.open[host] >= l.max
		if !full {
			l.open[host]++
		}
		l.mu.Unlock()
		if full {
			c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l, host: host}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *perAddrListener
	host string
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.open[c.host]--; c.l.open[c.host] <= 0 {
			delete(c.l.open, c.host)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

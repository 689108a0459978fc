package testutil

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	builds  = map[string]string{} // package → binary
)

// ModuleRoot is the repository root (where go.mod is).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildApp builds the pocketlytics binary once per test process and returns
// its path.
func BuildApp(t testing.TB) string {
	t.Helper()
	return BuildPackage(t, ".")
}

// BuildPackage builds the main package pkg (relative to the module root,
// e.g. "./examples/existing-app") once per test process and returns the
// binary's path.
func BuildPackage(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builds[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "pocketlytics-bin-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = ModuleRoot()
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=go1.27.3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builds[pkg] = bin
	return bin
}

// AppOptions configure StartApp.
type AppOptions struct {
	// Env is the app's whole Pocketlytics configuration (REDIS_URL=…,
	// CLICKHOUSE_URL=…). Settings from the test's own environment are not
	// inherited, so a test runs on embedded defaults unless it says otherwise.
	Env []string

	// DataDir reuses a data directory (e.g. of an app killed earlier).
	// Empty: a fresh temporary one.
	DataDir string

	// Package is the main package to run (e.g. "./examples/existing-app").
	// Empty: the pocketlytics binary.
	Package string

	// Addr is the address to listen on, kept across restarts (as behind a
	// load balancer). Empty: a free loopback port, a new one each start.
	Addr string

	// Command is the command that serves (default "serve"; "collect" for a
	// collector node).
	Command string
}

// App is a running `pocketlytics serve` process.
type App struct {
	URL     string // http://127.0.0.1:PORT
	DataDir string
	Addr    string

	t    testing.TB
	bin  string
	opts AppOptions
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   sync.Mutex
}

// pocketlyticsEnv lists the variables a test must set explicitly.
var pocketlyticsEnv = []string{
	"REDIS_URL", "REDIS_PREFIX", "REDIS_SESSION_TIMEOUT", "LIVE_CHANNEL", "CLICKHOUSE_URL", "CLICKHOUSE_CLUSTER", "GEOIP_DB", "GEO_HEADERS", "TRACK_LOCALHOST",
	"RATE_LIMIT", "QUEUE_DIR", "SITES_COLLECTION", "SALTS_COLLECTION", "NO_GEOIP_DOWNLOAD", "QUEUE_FSYNC", "FLUSH_BATCH", "FLUSH_INTERVAL",
	"CLAIM_IDLE", "MAX_DELIVERIES", "RETENTION_DAYS", "LIVE_WINDOW", "METRICS_TOKEN", "NODE_ID", "TRUSTED_PROXY_HEADERS",
}

// StartApp runs the binary on a free loopback port and waits until
// /api/health answers. The process is killed when the test ends.
func StartApp(t testing.TB, opts AppOptions) *App {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	pkg := opts.Package
	if pkg == "" {
		pkg = "."
	}
	a := &App{t: t, bin: BuildPackage(t, pkg), opts: opts, DataDir: opts.DataDir}
	a.log = &bytes.Buffer{}
	a.start()
	t.Cleanup(func() {
		a.Kill()
		// PocketBase prints this when its log store refuses an entry,
		// which the operator then never sees in the admin UI's Logs.
		if strings.Contains(a.Log(), logRefused) {
			t.Errorf("the app wrote log entries that PocketBase could not store")
		}
		if t.Failed() {
			t.Logf("app log (%s):\n%s", a.DataDir, a.Log())
		}
	})
	return a
}

// Superuser creates (or updates) a superuser through the CLI.
func (a *App) Superuser(email, password string) {
	a.t.Helper()
	cmd := exec.Command(a.bin, "superuser", "upsert", email, password, "--dev=false", "--dir", a.DataDir)
	cmd.Env = a.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		a.t.Fatalf("superuser upsert: %v\n%s", err, out)
	}
}

func (a *App) env() []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, name := range pocketlyticsEnv {
			if strings.HasPrefix(kv, name+"=") {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, a.opts.Env...)
}

func (a *App) start() {
	a.t.Helper()
	a.Addr = a.opts.Addr
	if a.Addr == "" {
		a.Addr = FreeAddr(a.t)
	}
	a.URL = "http://" + a.Addr
	a.mu.Lock()
	// --dev=false: PocketBase takes a binary in the temp dir for `go run`
	// and would log every SQL statement.
	command := a.opts.Command
	if command == "" {
		command = "serve"
	}
	a.cmd = exec.Command(a.bin, command, "--dev=false", "--http", a.Addr, "--dir", a.DataDir)
	a.cmd.Env = a.env()
	a.cmd.Stdout = lockedWriter{&a.mu, a.log}
	a.cmd.Stderr = lockedWriter{&a.mu, a.log}
	err := a.cmd.Start()
	a.mu.Unlock()
	if err != nil {
		a.t.Fatalf("start app: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(a.URL + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Fatalf("app did not become healthy at %s:\n%s", a.URL, a.Log())
}

// logRefused starts the line PocketBase prints for a log entry its store
// refused (core.BaseApp's log writer).
const logRefused = "Failed to write log"

// Log returns what the process printed so far, across restarts.
func (a *App) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.log == nil {
		return ""
	}
	return a.log.String()
}

// Kill ends the process with SIGKILL, as a crash would.
func (a *App) Kill() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Kill()
	_ = a.cmd.Wait()
	a.cmd = nil
}

// Stop ends the process gracefully (SIGTERM) and waits for it.
func (a *App) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
	a.cmd = nil
}

// Restart starts the process again on the same data dir (and a new port,
// unless AppOptions.Addr is set).
func (a *App) Restart() {
	a.t.Helper()
	a.Kill()
	a.start()
}

// FreeAddr returns a loopback address with a free port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

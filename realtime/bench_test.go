package realtime_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
	"github.com/pocketlytics/pocketlytics/realtime"
	"github.com/pocketlytics/pocketlytics/realtime/livetest"
)

// benchConfigs are the two deployments: one process, and Redis-backed.
func benchConfigs(b *testing.B) map[string]func(*testing.B) realtime.Config {
	return map[string]func(*testing.B) realtime.Config{
		// The subscribers all come from 127.0.0.1.
		"memory": func(*testing.B) realtime.Config { return realtime.Config{MaxConnsPerAddr: -1} },
		"redis": func(b *testing.B) realtime.Config {
			rdb := testutil.Redis(b)
			cfg := realtime.Config{Redis: rdb, Channel: testutil.Unique("pltest-live-"), KeyPrefix: testutil.RedisPrefix(b, "pltest"), MaxConnsPerAddr: -1}
			return cfg
		},
	}
}

// BenchmarkLatency measures a hit handed to Publish until its arrival
// message is read by an SSE subscriber over HTTP, one hit at a time.
//
//	go test -run '^$' -bench Latency -benchtime 2000x ./realtime/
func BenchmarkLatency(b *testing.B) {
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			app, live, base := start(b, cfg(b))
			c := livetest.Connect(b, base)
			c.Subscribe(b, livetest.Token(b, app, "users", livetest.Owner), realtime.Topic(livetest.Site))

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				vid := visitor()
				key := []byte(realtime.VisitorKey(livetest.Site, vid))
				sent := time.Now()
				live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/"))
				for {
					e := c.Next(b)
					if bytes.Contains(e.Data, key) && bytes.Contains(e.Data, []byte(realtime.TypeArrival)) {
						lat = append(lat, e.At.Sub(sent))
						break
					}
				}
			}
			b.StopTimer()
			report(b, lat)
		})
	}
}

// BenchmarkConversionLatency is BenchmarkLatency for the conversion message
// that follows the arrival when the site has goals (20, the last one
// reached): what matching adds on the way to the dashboard.
//
//	go test -run '^$' -bench 'Latency' -benchtime 2000x ./realtime/
func BenchmarkConversionLatency(b *testing.B) {
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			app, live, base := start(b, cfg(b))
			for i := range 19 {
				createGoal(b, app, livetest.Site, fmt.Sprintf("Goal %d", i), fmt.Sprintf("event-%d", i), "", map[string]string{"plan": "pro"})
			}
			createGoal(b, app, livetest.Site, "Thanks", "", "/thanks*", nil)
			c := livetest.Connect(b, base)
			c.Subscribe(b, livetest.Token(b, app, "users", livetest.Owner), realtime.Topic(livetest.Site))

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				vid := visitor()
				key := []byte(realtime.VisitorKey(livetest.Site, vid))
				sent := time.Now()
				live.Publish(livetest.Hit(livetest.Site, vid, event.Pageview, "/thanks/pro"))
				for {
					e := c.Next(b)
					if bytes.Contains(e.Data, key) && bytes.Contains(e.Data, []byte(realtime.TypeConversion)) {
						lat = append(lat, e.At.Sub(sent))
						break
					}
				}
			}
			b.StopTimer()
			report(b, lat)
		})
	}
}

// BenchmarkPublish measures what the ingest route pays per hit for the live
// view: Publish's hand-over to the worker. With Redis unreachable the worker
// fails every batch; Publish must stay as cheap (it drops when the queue is
// full) and never block.
//
//	go test -run '^$' -bench Publish ./realtime/
func BenchmarkPublish(b *testing.B) {
	cases := map[string]func(*testing.B) realtime.Config{
		// The subscribers all come from 127.0.0.1.
		"memory": func(*testing.B) realtime.Config { return realtime.Config{MaxConnsPerAddr: -1} },
		"redis-down": func(b *testing.B) realtime.Config {
			return realtime.Config{Redis: livetest.NewRedisServer(b).Client()} // never started
		},
	}
	for name, cfg := range cases {
		b.Run(name, func(b *testing.B) {
			app := livetest.NewApp(b)
			live, err := realtime.Register(app, cfg(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { live.Close() })
			hits := make([]event.Event, 1024)
			for i := range hits {
				hits[i] = livetest.Hit(livetest.Site, visitor(), event.Pageview, "/")
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					live.Publish(hits[i%len(hits)])
				}
			})
		})
	}
}

// BenchmarkFanout measures delivery to 500 SSE subscribers of one site while
// hits arrive at 200/s (one per b.N). The subscribers run in a child
// process (this test binary in client mode, see TestMain), so the CPU
// reported as server-cpu-cores is the server's alone: realtime, PocketBase's
// SSE writes and the HTTP stack. Latency is hit accepted → message parsed
// by a subscriber, over all subscribers.
//
//	go test -run '^$' -bench Fanout -benchtime 1000x -timeout 20m ./realtime/
func BenchmarkFanout(b *testing.B) {
	const subscribers, rate = 500, 200
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			app, live, base := start(b, cfg(b))
			child := startClients(b, fanoutJob{
				URL:      base,
				Token:    livetest.Token(b, app, "users", livetest.Owner),
				Topic:    realtime.Topic(livetest.Site),
				Clients:  subscribers,
				Messages: subscribers * b.N,
			})

			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			cpu0, wall0 := cpuTime(), time.Now()
			b.ResetTimer()
			for range b.N {
				<-tick.C
				h := livetest.Hit(livetest.Site, visitor(), event.Pageview, "/")
				h.Time = time.Now().UTC() // full precision: subscribers measure from it
				live.Publish(h)
			}
			res := child.wait(b)
			b.StopTimer()
			wall := time.Since(wall0).Seconds()
			b.ReportMetric(res.P50, "p50-ms")
			b.ReportMetric(res.P99, "p99-ms")
			b.ReportMetric(res.Max, "max-ms")
			b.ReportMetric((cpuTime()-cpu0).Seconds()/wall, "server-cpu-cores")
			b.ReportMetric(child.cpu.Seconds()/wall, "clients-cpu-cores")
			b.ReportMetric(0, "ns/op") // wall time per op is the pacing, not a result
		})
	}
}

// BenchmarkHostileWatchers measures what watchers that subscribe to a
// public site under 1,000 keys each cost the server: 100 such clients in a
// child process while hits arrive at 50/s (one per b.N). It reports the
// server's CPU, its heap, the arrivals the clients received per hit, and
// the latency of another request (GET /api/health) meanwhile.
//
//	go test -run '^$' -bench HostileWatchers -benchtime 200x -timeout 20m ./realtime/
func BenchmarkHostileWatchers(b *testing.B) {
	const clients, keysPerClient, rate = 100, 1000, 50
	// All clients come from 127.0.0.1: the bound per address is off here,
	// to measure what their keys cost.
	app, live, base := start(b, realtime.Config{MaxConnsPerAddr: -1})
	site := livetest.CreateSite(b, app, "hostilesite0001", livetest.Owner, nil, true).Id
	child := startClients(b, fanoutJob{
		URL:      base,
		Topic:    realtime.Topic(site),
		Clients:  clients,
		Keys:     keysPerClient,
		Messages: clients * keysPerClient * b.N, // one per key: the most a client could get
		// The arrivals of the run, and two seconds for the last ones.
		Wait: time.Duration(b.N)*time.Second/rate + 2*time.Second,
	})

	var health []time.Duration
	stop := make(chan struct{})
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			t0 := time.Now()
			if res, err := http.Get(base + "/api/health"); err == nil {
				res.Body.Close()
				health = append(health, time.Since(t0))
			}
		}
	}()

	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	cpu0, wall0 := cpuTime(), time.Now()
	b.ResetTimer()
	for range b.N {
		<-tick.C
		h := livetest.Hit(site, visitor(), event.Pageview, "/")
		h.Time = time.Now().UTC()
		live.Publish(h)
	}
	res := child.wait(b)
	b.StopTimer()
	wall := time.Since(wall0).Seconds()
	close(stop)
	<-probed
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	slices.Sort(health)
	b.ReportMetric((cpuTime()-cpu0).Seconds()/wall, "server-cpu-cores")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(res.Received)/float64(b.N), "arrivals/hit")
	b.ReportMetric(res.P50, "delivery-p50-ms")
	if len(health) > 0 {
		b.ReportMetric(float64(health[len(health)/2])/float64(time.Millisecond), "health-p50-ms")
		b.ReportMetric(float64(health[len(health)*99/100])/float64(time.Millisecond), "health-p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// fanoutJob tells the client process what to do.
type fanoutJob struct {
	URL, Token, Topic string
	Clients           int
	Keys              int           // subscription keys per client (0: one)
	Messages          int           // arrivals to wait for, over all clients
	Wait              time.Duration // at most (0: a minute)
}

// fanoutResult is what the client process reports, in milliseconds.
type fanoutResult struct {
	P50, P99, Max float64
	Received      int
}

const clientsEnv = "POCKETLYTICS_BENCH_CLIENTS"

type clientProc struct {
	cmd *exec.Cmd
	out *bufio.Scanner
	cpu time.Duration
}

// startClients runs this binary in client mode and waits until every
// client is subscribed.
func startClients(b *testing.B, job fanoutJob) *clientProc {
	b.Helper()
	raw, _ := json.Marshal(job)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), clientsEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &clientProc{cmd: cmd, out: bufio.NewScanner(stdout)}
	if !p.out.Scan() || p.out.Text() != "ready" {
		b.Fatalf("client process did not get ready: %q", p.out.Text())
	}
	return p
}

func (p *clientProc) wait(b *testing.B) fanoutResult {
	b.Helper()
	var res fanoutResult
	if !p.out.Scan() || json.Unmarshal(p.out.Bytes(), &res) != nil {
		b.Fatalf("client process: bad result %q", p.out.Text())
	}
	p.cmd.Wait()
	p.cpu = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	return res
}

// TestMain runs the benchmark's subscribers when started as the client process.
func TestMain(m *testing.M) {
	if job := os.Getenv(clientsEnv); job != "" {
		os.Exit(runClients(job))
	}
	os.Exit(m.Run())
}

// runClients connects and subscribes the clients, prints "ready", then
// prints the latency percentiles once all expected arrivals came (or a
// minute passed).
func runClients(raw string) int {
	var job fanoutJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, job.Messages)
		done = make(chan struct{})
	)
	for range job.Clients {
		id, err := connectClient(job.URL, func(e livetest.Event) {
			sent, ok := arrivalTime(e.Data)
			if !ok {
				return
			}
			mu.Lock()
			lat = append(lat, e.At.Sub(sent))
			if len(lat) == job.Messages {
				close(done)
			}
			mu.Unlock()
		})
		if err == nil {
			err = subscribeClient(job.URL, id, job.Token, keys(job.Topic, job.Keys)...)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			return 1
		}
	}
	fmt.Println("ready")

	if job.Wait <= 0 {
		job.Wait = time.Minute
	}
	select {
	case <-done:
	case <-time.After(job.Wait):
	}
	mu.Lock()
	defer mu.Unlock()
	res := fanoutResult{Received: len(lat)}
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
		}
		res.P50, res.P99, res.Max = ms(0.5), ms(0.99), ms(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Received < job.Messages {
		fmt.Fprintf(os.Stderr, "client: received %d of %d arrivals\n", res.Received, job.Messages)
	}
	return 0
}

func connectClient(base string, fn func(livetest.Event)) (string, error) {
	res, err := http.Get(base + "/api/realtime")
	if err != nil {
		return "", err
	}
	connected := make(chan string, 1)
	go func() {
		defer res.Body.Close()
		first := true
		livetest.ReadSSE(res.Body, func(e livetest.Event) {
			if first {
				first = false
				connected <- e.ID
				return
			}
			fn(e)
		})
	}()
	select {
	case id := <-connected:
		return id, nil
	case <-time.After(livetest.Wait):
		return "", fmt.Errorf("no PB_CONNECT")
	}
}

// keys returns n subscription keys of topic that differ only in their
// options, as a hostile client would send them (one key for n <= 1).
func keys(topic string, n int) []string {
	if n <= 1 {
		return []string{topic}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = topic + "?options=" + url.QueryEscape(fmt.Sprintf(`{"query":{"k":"%d"}}`, i))
	}
	return out
}

func subscribeClient(base, id, token string, topics ...string) error {
	body, _ := json.Marshal(map[string]any{"clientId": id, "subscriptions": topics})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/realtime", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("subscribe: status %d", res.StatusCode)
	}
	return nil
}

// arrivalTime cheaply extracts the hit time of an arrival message.
func arrivalTime(data []byte) (time.Time, bool) {
	if !bytes.HasPrefix(data, []byte(`{"type":"arrival"`)) {
		return time.Time{}, false
	}
	const field = `"time":"`
	i := bytes.Index(data, []byte(field))
	if i < 0 {
		return time.Time{}, false
	}
	rest := data[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(0, "ns/op") // wall time per op is the pacing, not a result
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

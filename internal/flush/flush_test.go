package flush_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/flush"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/internal/queue"
	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
	"github.com/pocketlytics/pocketlytics/internal/store"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlitestore"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// env is a real local queue and a real SQLite store in a temp dir.
type env struct {
	dir   string
	q     *localq.Queue
	s     *sqlitestore.Store
	rows  *sql.DB // a separate handle to count what was stored
	runs  sync.WaitGroup
	errMu sync.Mutex
	err   error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	var err error
	if e.q, err = localq.Open(filepath.Join(e.dir, "queue"), localq.Options{}); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(e.dir, "analytics.db")
	if e.s, err = sqlitestore.Open(dbPath); err != nil {
		t.Fatal(err)
	}
	if e.rows, err = sql.Open("sqlite", dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.runs.Wait()
		e.rows.Close()
		e.s.Close()
		e.q.Close()
	})
	return e
}

// run starts Run in the background; the returned func stops it and
// returns Run's result.
func (e *env) run(t *testing.T, c queue.Consumer, w store.Writer, opts flush.Options) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f := flush.New(c, w, opts)
	e.runs.Go(func() { done <- f.Run(ctx) })
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func (e *env) enqueue(t *testing.T, evs ...event.Event) {
	t.Helper()
	if err := e.q.Enqueue(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

func (e *env) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.rows.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) stats(t *testing.T) queue.Stats {
	t.Helper()
	st, err := e.q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testEvents(prefix string, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			ID:        fmt.Sprintf("%s-%05d", prefix, i),
			Time:      time.Now().UTC(),
			SiteID:    "site1",
			Type:      event.Pageview,
			Pathname:  "/",
			VisitorID: uint64(i),
			SessionID: uint64(i),
		}
	}
	return evs
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

// fast keeps retries quick in tests.
func fast(o flush.Options) flush.Options {
	o.MinBackoff, o.MaxBackoff = time.Millisecond, 10*time.Millisecond
	return o
}

func TestFlushesBatches(t *testing.T) {
	cases := []struct {
		name   string
		opts   flush.Options
		events int
	}{
		// With an hour-long interval only full batches can be written.
		{"full batches", flush.Options{BatchSize: 100, Interval: time.Hour}, 1000},
		{"partial batch after the interval", flush.Options{BatchSize: 10000, Interval: 20 * time.Millisecond}, 7},
		{"defaults", flush.Options{}, 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			flushed := counter(metrics.FlushedRows)
			e.run(t, e.q, e.s, c.opts)
			e.enqueue(t, testEvents("b", c.events)...)

			eventually(t, "all events are stored", func() bool { return e.count(t) == c.events })
			eventually(t, "the queue is acknowledged", func() bool { return e.stats(t).Length == 0 })
			if got := counter(metrics.FlushedRows) - flushed; got != float64(c.events) {
				t.Fatalf("FlushedRows grew by %v, want %d", got, c.events)
			}
			eventually(t, "the depth gauge drops", func() bool { return gauge(metrics.QueueDepth) == 0 })
		})
	}
}

// TestBacklogTailIsNotHeld: a partial batch whose events waited in the
// queue for an Interval already (the tail of a backlog) is stored at once.
func TestBacklogTailIsNotHeld(t *testing.T) {
	e := newEnv(t)
	evs := testEvents("old", 5)
	for i := range evs {
		evs[i].Time = time.Now().Add(-2 * time.Minute).UTC()
	}
	e.enqueue(t, evs...)
	e.run(t, e.q, e.s, flush.Options{BatchSize: 10000, Interval: time.Minute})
	eventually(t, "the old events are stored", func() bool { return e.count(t) == len(evs) })

	// Fresh events still wait for the interval.
	e.enqueue(t, testEvents("new", 3)...)
	time.Sleep(300 * time.Millisecond)
	if n := e.count(t); n != len(evs) {
		t.Fatalf("%d events stored, want the fresh ones held for the interval", n)
	}
}

// readCounter counts the flusher's reads of the queue.
type readCounter struct {
	queue.Consumer
	reads atomic.Int64
}

func (r *readCounter) Read(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	r.reads.Add(1)
	return r.Consumer.Read(ctx, max, wait)
}

// TestTrickleIsReadInFewRoundTrips: events arriving one by one are
// gathered for a while between reads, not read one per round trip (for
// Redis that would be an XREADGROUP per hit).
func TestTrickleIsReadInFewRoundTrips(t *testing.T) {
	e := newEnv(t)
	rc := &readCounter{Consumer: e.q}
	e.run(t, rc, e.s, flush.Options{BatchSize: 10000, Interval: 500 * time.Millisecond})

	const n = 200
	for i, ev := range testEvents("t", n) {
		e.enqueue(t, ev)
		if i%2 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	eventually(t, "all events are stored", func() bool { return e.count(t) == n })
	// One read per 50ms gap (a tenth of the interval) over the trickle and
	// the rest of its interval, plus the empty reads after it: about 20.
	if reads := rc.reads.Load(); reads > 60 {
		t.Fatalf("%d reads for %d events arriving one by one, want a read per gap", reads, n)
	}
}

// appendReader reads onto the buffer the flusher hands it, as redisq does,
// and counts the reads that came with one.
type appendReader struct {
	queue.Consumer
	reads, onBuffer atomic.Int64
}

func (a *appendReader) ReadAppend(ctx context.Context, dst []queue.Message, max int, wait time.Duration) ([]queue.Message, error) {
	a.reads.Add(1)
	if cap(dst) > 0 {
		a.onBuffer.Add(1)
	}
	msgs, err := a.Consumer.Read(ctx, max, wait)
	return append(dst, msgs...), err
}

// TestReadsOntoItsBuffer: with a queue.AppendReader the flusher gathers
// batches on buffers it reuses, and stores every event once.
func TestReadsOntoItsBuffer(t *testing.T) {
	e := newEnv(t)
	ar := &appendReader{Consumer: e.q}
	e.run(t, ar, e.s, flush.Options{BatchSize: 100, Interval: 20 * time.Millisecond})

	const n, per = 1000, 40
	for i := 0; i < n; i += per {
		e.enqueue(t, testEvents(fmt.Sprint("r", i), per)...)
		time.Sleep(2 * time.Millisecond)
	}
	eventually(t, "all events are stored", func() bool { return e.count(t) == n })
	eventually(t, "the queue is acknowledged", func() bool { return e.stats(t).Length == 0 })
	if ar.onBuffer.Load() == 0 {
		t.Fatalf("none of %d reads was onto a buffer of the flusher's", ar.reads.Load())
	}
}

// flaky wraps the real store and fails inserts on demand.
type flaky struct {
	store.Writer
	mu       sync.Mutex
	fail     func(call int, token string, events []event.Event) error // nil: pass
	calls    int
	tokens   []string
	writeToo bool // insert first, then report the failure (a lost reply)
}

func (f *flaky) Insert(ctx context.Context, token string, events []event.Event) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.tokens = append(f.tokens, token)
	fail := f.fail
	f.mu.Unlock()
	var err error
	if fail != nil {
		err = fail(call, token, events)
	}
	if err != nil && !f.writeToo {
		return err
	}
	if werr := f.Writer.Insert(ctx, token, events); werr != nil {
		return werr
	}
	return err
}

func TestStoreOutage(t *testing.T) {
	cases := []struct {
		name     string
		writeToo bool
	}{
		{"store down", false},
		{"insert done but reply lost", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			w := &flaky{Writer: e.s, writeToo: c.writeToo, fail: func(call int, _ string, _ []event.Event) error {
				if call <= 4 {
					return errors.New("connection refused")
				}
				return nil
			}}
			errs := counter(metrics.InsertErrors)
			e.enqueue(t, testEvents("o", 50)...)
			log, logs := testutil.NewLogs(t)
			e.run(t, e.q, w, fast(flush.Options{BatchSize: 50, Interval: time.Hour, Logger: log}))

			eventually(t, "the batch is stored", func() bool { return e.stats(t).Length == 0 })
			if n := e.count(t); n != 50 {
				t.Fatalf("%d rows, want exactly 50", n)
			}
			if got := counter(metrics.InsertErrors) - errs; got != 4 {
				t.Fatalf("InsertErrors grew by %v, want 4", got)
			}
			// The operator sees each failure, storable by PocketBase's
			// log store (NewLogs fails the test otherwise), and the end.
			failed := logs.Find("flush: insert failed, retrying")
			if len(failed) != 4 {
				t.Fatalf("%d retry entries, want 4", len(failed))
			}
			for i, l := range failed {
				if l.Level != slog.LevelWarn || l.Data["attempt"] != int64(i+1) || l.Data["error"] != "connection refused" {
					t.Fatalf("retry entry %d: %v %v", i, l.Level, l.Data)
				}
				if _, ok := l.Data["retryIn"].(string); !ok {
					t.Fatalf("retryIn is %T, want text", l.Data["retryIn"])
				}
			}
			if n := len(logs.Find("flush: insert succeeded after retries")); n != 1 {
				t.Fatalf("%d recovery entries, want 1", n)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, tok := range w.tokens {
				if tok != w.tokens[0] {
					t.Fatalf("retries used tokens %v, want the same batch each time", w.tokens)
				}
			}
		})
	}
}

func TestPoisonEntries(t *testing.T) {
	e := newEnv(t)
	evs := testEvents("p", 250)
	bad := map[string]bool{}
	for _, i := range []int{0, 77, 78, 249} {
		evs[i].SiteID = "" // the real store rejects these permanently
		bad[evs[i].ID] = true
	}
	e.enqueue(t, evs...)
	log, logs := testutil.NewLogs(t)
	e.run(t, e.q, e.s, fast(flush.Options{BatchSize: 100, Interval: 10 * time.Millisecond, MaxDeliveries: 3, Logger: log}))

	eventually(t, "the queue is drained", func() bool { return e.stats(t).Length == 0 })
	if n := e.count(t); n != len(evs)-len(bad) {
		t.Fatalf("%d rows, want %d", n, len(evs)-len(bad))
	}
	if st := e.stats(t); st.DeadLetters != int64(len(bad)) {
		t.Fatalf("%d dead letters, want %d", st.DeadLetters, len(bad))
	}

	f, err := os.Open(filepath.Join(e.dir, "queue", "dead", "dead.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var dl localq.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Event == nil || !bad[dl.Event.ID] || dl.Error == "" {
			t.Fatalf("unexpected dead letter %s", sc.Text())
		}
		delete(bad, dl.Event.ID)
	}
	if len(bad) > 0 {
		t.Fatalf("not dead-lettered: %v", bad)
	}
	if n := len(logs.Find("flush: event dead-lettered")); n != 4 {
		t.Fatalf("%d dead-letter log entries, want 4", n)
	}
}

// consumerOnly hides the queue's DeadLetter method.
type consumerOnly struct{ queue.Consumer }

func TestPermanentErrorWithoutDeadLetterer(t *testing.T) {
	e := newEnv(t)
	var broken atomic.Bool
	broken.Store(true)
	w := &flaky{Writer: e.s, fail: func(int, string, []event.Event) error {
		if broken.Load() {
			return store.PermanentError(errors.New("column type mismatch"))
		}
		return nil
	}}
	e.enqueue(t, testEvents("n", 30)...)
	e.run(t, consumerOnly{e.q}, w, fast(flush.Options{BatchSize: 30, Interval: time.Hour}))

	eventually(t, "several attempts failed", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.calls > 10
	})
	if n := e.count(t); n != 0 {
		t.Fatalf("%d rows while the store rejects everything", n)
	}
	broken.Store(false) // an operator fixed the store
	eventually(t, "the batch is stored", func() bool { return e.count(t) == 30 })
	if st := e.stats(t); st.DeadLetters != 0 {
		t.Fatalf("%d dead letters without a dead-letter queue", st.DeadLetters)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("drains what it holds", func(t *testing.T) {
		e := newEnv(t)
		stop := e.run(t, e.q, e.s, flush.Options{BatchSize: 10000, Interval: time.Hour})
		e.enqueue(t, testEvents("s", 42)...)
		eventually(t, "the flusher holds the events", func() bool { return e.stats(t).Pending == 42 })
		if n := e.count(t); n != 0 {
			t.Fatalf("%d rows before the interval or the batch filled", n)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := e.count(t); n != 42 {
			t.Fatalf("%d rows after shutdown, want 42", n)
		}
		if st := e.stats(t); st.Length != 0 {
			t.Fatalf("queue length %d after shutdown, want 0", st.Length)
		}
	})

	t.Run("drains the batch read ahead", func(t *testing.T) {
		e := newEnv(t)
		gate := make(chan struct{})
		w := &flaky{Writer: e.s, fail: func(call int, _ string, _ []event.Event) error {
			if call == 1 {
				<-gate // the first insert hangs until the flusher is stopped
			}
			return nil
		}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- flush.New(e.q, w, flush.Options{BatchSize: 10, Interval: time.Hour}).Run(ctx) }()
		e.enqueue(t, testEvents("ahead", 30)...)

		// One batch in the insert, the next read ahead, no more.
		eventually(t, "a batch is read ahead", func() bool { return e.stats(t).Pending == 20 })
		time.Sleep(50 * time.Millisecond)
		if n := e.stats(t).Pending; n != 20 {
			t.Fatalf("%d events handed out while an insert hangs, want 20 (one batch read ahead)", n)
		}

		cancel()
		close(gate)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		if n := e.count(t); n != 20 {
			t.Fatalf("%d rows after shutdown, want the 20 held", n)
		}
		if st := e.stats(t); st.Length != 10 || st.Pending != 0 {
			t.Fatalf("queue length %d, pending %d after shutdown, want 10 never read and 0 pending", st.Length, st.Pending)
		}
	})

	t.Run("store down: gives up in time and keeps the events queued", func(t *testing.T) {
		e := newEnv(t)
		w := &flaky{Writer: e.s, fail: func(int, string, []event.Event) error { return errors.New("connection refused") }}
		stop := e.run(t, e.q, w, fast(flush.Options{BatchSize: 5, Interval: time.Hour, DrainTimeout: 50 * time.Millisecond}))
		e.enqueue(t, testEvents("d", 5)...)
		eventually(t, "inserts are failing", func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.calls > 2
		})
		if err := stop(); err == nil {
			t.Fatal("Run returned nil with events it could not store")
		}
		if st := e.stats(t); st.Length != 5 {
			t.Fatalf("queue length %d, want the 5 events kept", st.Length)
		}
	})
}

func TestToken(t *testing.T) {
	msgs := func(ids ...string) []queue.Message {
		out := make([]queue.Message, len(ids))
		for i, id := range ids {
			out[i] = queue.Message{ID: id}
		}
		return out
	}
	a := flush.Token(msgs("1-0", "1-90"))
	cases := []struct {
		name string
		msgs []queue.Message
		same bool
	}{
		{"same ids", msgs("1-0", "1-90"), true},
		{"other order", msgs("1-90", "1-0"), false},
		{"subset", msgs("1-0"), false},
		{"ids not merely concatenated", msgs("1-01-90"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := flush.Token(c.msgs); (got == a) != c.same {
				t.Fatalf("Token = %s vs %s, want same=%v", got, a, c.same)
			}
		})
	}
	if len(a) != 32 {
		t.Fatalf("token %q has %d characters, want 32", a, len(a))
	}
}

// A queue can hold an event twice (a Redis write that timed out but landed,
// then spooled and replayed). When both copies share a batch, the store
// must get the event once.
func TestRepeatedEventInOneBatch(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var inserted []int
	w := &flaky{Writer: e.s, fail: func(_ int, _ string, events []event.Event) error {
		mu.Lock()
		inserted = append(inserted, len(events))
		mu.Unlock()
		return nil
	}}
	evs := testEvents("dup", 3)
	e.enqueue(t, append(evs, evs[1], evs[2])...)
	e.run(t, e.q, w, flush.Options{BatchSize: 10, Interval: 20 * time.Millisecond})

	eventually(t, "the queue is acknowledged", func() bool { return e.stats(t).Length == 0 })
	if n := e.count(t); n != 3 {
		t.Fatalf("stored %d rows, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(inserted) != 1 || inserted[0] != 3 {
		t.Fatalf("inserts of %v events, want one insert of 3", inserted)
	}
}

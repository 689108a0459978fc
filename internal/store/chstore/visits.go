package chstore

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

// visitLookback bounds how far before and after a batch the store looks
// for the rest of its visits' events and for their current rows: a visit
// longer than this is counted from its part within it.
const visitLookback = 24 * time.Hour

// visit is a row of the visits table (sqlquery.VisitColumns) without its
// sign and version.
type visit struct {
	SiteID               string
	SessionID, VisitorID uint64
	Start, End           time.Time
	Pageviews, Events    int64
	Attrs                [15]string // entry_page … os
	Engaged              int64
}

func (v *visit) scanTargets() []any {
	t := []any{&v.SiteID, &v.SessionID, &v.VisitorID, &v.Start, &v.End, &v.Pageviews, &v.Events}
	for i := range v.Attrs {
		t = append(t, &v.Attrs[i])
	}
	return append(t, &v.Engaged)
}

// duration is the visit's duration in seconds as sqlquery.Duration defines it.
func (v visit) duration() int64 {
	if v.Engaged > 0 {
		return v.Engaged / 1000
	}
	return v.End.Unix() - v.Start.Unix()
}

// sessionKey names a visit.
type sessionKey struct {
	site string
	id   uint64
}

// refreshVisits rebuilds the visits of the batch's sessions from their
// stored events (all of them, not only those this call inserted: after a
// crash between the events and the visits insert, the redelivered batch
// finds its events stored and still brings the visits up to date).
func (s *Store) refreshVisits(ctx context.Context, events []event.Event) error {
	keys := make(map[sessionKey]struct{})
	first, last := events[0].Time, events[0].Time
	for i := range events {
		keys[sessionKey{events[i].SiteID, events[i].SessionID}] = struct{}{}
		first, last = earlier(first, events[i].Time), later(last, events[i].Time)
	}
	return s.updateVisits(ctx, keys, first, last)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// updateVisits makes the visits and visit_values rows of keys match their
// events between first and last (widened by visitLookback), each table
// through replace. Updates are serialized within the process: two
// concurrent updates of one visit would cancel its rows twice.
func (s *Store) updateVisits(ctx context.Context, keys map[sessionKey]struct{}, first, last time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	s.visitsMu.Lock()
	defer s.visitsMu.Unlock()

	from, to := first.Add(-visitLookback).Unix(), last.Add(visitLookback).Unix()
	sites := clickhouse.GroupSet{}
	seen := map[string]bool{}
	ids := make([]uint64, 0, len(keys))
	for k := range keys {
		ids = append(ids, k.id)
		if !seen[k.site] {
			seen[k.site] = true
			sites.Value = append(sites.Value, k.site)
		}
	}
	// query runs a query over the batch's sessions (the external table
	// batch_sessions) and scans each row.
	query := func(op string, f sqlquery.Frag, scan func(driver.Rows) error) error {
		table, err := ext.NewTable("batch_sessions", ext.Column("session_id", "UInt64"))
		if err != nil {
			return classify(op, err)
		}
		if _, err := table.Block().Columns[0].Append(ids); err != nil {
			return classify(op, err)
		}
		rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(table)), f.SQL, f.Args...)
		if err != nil {
			return classify(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return classify(op, err)
			}
		}
		return classify(op, rows.Err())
	}
	inBatch := "site_id IN ? AND %s >= toDateTime(?) AND %s <= toDateTime(?) AND session_id IN (SELECT session_id FROM batch_sessions)"
	events := sqlquery.Frag{SQL: fmt.Sprintf(inBatch, "ts", "ts"), Args: []any{sites, from, to}}
	stored := sqlquery.Frag{SQL: fmt.Sprintf(inBatch, "start_ts", "start_ts"), Args: []any{sites, from, to}}

	// The visits and their values as their events make them now.
	visits := map[sessionKey]map[struct{}]visit{}
	err := query("rebuild visits", sqlquery.VisitsSQL(dialect{}, events), func(r driver.Rows) error {
		var v visit
		if err := r.Scan(v.scanTargets()...); err != nil {
			return err
		}
		if k := (sessionKey{v.SiteID, v.SessionID}); hasKey(keys, k) {
			visits[k] = map[struct{}]visit{{}: v}
		}
		return nil
	})
	if err != nil {
		return err
	}
	values := map[sessionKey]map[valueKey]visitValue{}
	err = query("rebuild visit values", sqlquery.VisitValuesSQL(dialect{}, events), func(r driver.Rows) error {
		var x visitValue
		if err := r.Scan(x.scanTargets()[:len(sqlquery.VisitValueColumns)]...); err != nil {
			return err
		}
		k := sessionKey{x.SiteID, x.SessionID}
		v, ok := visits[k][struct{}{}]
		if !ok {
			return nil
		}
		x.complete(v)
		if values[k] == nil {
			values[k] = map[valueKey]visitValue{}
		}
		values[k][valueKey{x.Dim, x.Value}] = x
		return nil
	})
	if err != nil {
		return err
	}

	// Their current rows.
	liveVisits := collapsing[struct{}, visit]{}
	err = query("read visits", sqlquery.Cat("SELECT "+visitSelect+", sign, version FROM visits WHERE ", stored), func(r driver.Rows) error {
		var v visit
		var sign int8
		var version uint32
		if err := r.Scan(append(v.scanTargets(), &sign, &version)...); err != nil {
			return err
		}
		liveVisits.add(sessionKey{v.SiteID, v.SessionID}, struct{}{}, v, sign, version)
		return nil
	})
	if err != nil {
		return err
	}
	liveValues := collapsing[valueKey, visitValue]{}
	err = query("read visit values", sqlquery.Cat("SELECT "+valueSelect+", sign, version FROM visit_values WHERE ", stored), func(r driver.Rows) error {
		var x visitValue
		var sign int8
		var version uint32
		if err := r.Scan(append(x.scanTargets(), &sign, &version)...); err != nil {
			return err
		}
		liveValues.add(sessionKey{x.SiteID, x.SessionID}, valueKey{x.Dim, x.Value}, x, sign, version)
		return nil
	})
	if err != nil {
		return err
	}

	// Each table is compared with its own rows, so a batch redelivered
	// after a crash between the two inserts completes whichever is stale.
	if err := replace(ctx, s.conn, valuesInsert, keys, liveValues, values, visitValue.equal, appendValue); err != nil {
		return err
	}
	return replace(ctx, s.conn, visitsInsert, keys, liveVisits, visits, visit.equal, appendVisit)
}

func hasKey(keys map[sessionKey]struct{}, k sessionKey) bool {
	_, ok := keys[k]
	return ok
}

// collapsing holds a VersionedCollapsingMergeTree's rows of some sessions:
// per session, per row id within it and version, the row and its summed
// signs. A row is live when its signs sum positive.
type collapsing[ID comparable, R any] map[sessionKey]*sessionRows[ID, R]

type versioned[ID comparable] struct {
	id      ID
	version uint32
}

type sessionRows[ID comparable, R any] struct {
	version uint32 // the highest used
	net     map[versioned[ID]]int
	rows    map[versioned[ID]]R
}

func (c collapsing[ID, R]) add(k sessionKey, id ID, r R, sign int8, version uint32) {
	st := c[k]
	if st == nil {
		st = &sessionRows[ID, R]{net: map[versioned[ID]]int{}, rows: map[versioned[ID]]R{}}
		c[k] = st
	}
	st.version = max(st.version, version)
	vk := versioned[ID]{id, version}
	st.net[vk] += int(sign)
	if sign > 0 {
		st.rows[vk] = r
	}
}

// replace inserts, in one block, for each session of keys whose live rows
// in stored differ from its rows in want: a copy of each live row with
// sign -1, and want's rows with the next version. A session already up to
// date is not written, so redelivery changes nothing.
func replace[ID comparable, R any](ctx context.Context, conn driver.Conn, insert string, keys map[sessionKey]struct{},
	stored collapsing[ID, R], want map[sessionKey]map[ID]R, equal func(R, R) bool,
	appendRow func(appender, R, int8, uint32) error) error {
	batch, err := conn.PrepareBatch(ctx, insert)
	if err != nil {
		return classify("prepare "+insert, err)
	}
	n := 0
	for k := range keys {
		live := map[ID]R{}
		var cancel []versioned[ID]
		var version uint32 = 1
		if st := stored[k]; st != nil {
			version = st.version + 1
			for vk, net := range st.net {
				if net > 0 {
					live[vk.id] = st.rows[vk]
					cancel = append(cancel, vk)
				}
			}
		}
		if len(cancel) == len(want[k]) && maps.EqualFunc(live, want[k], equal) {
			continue
		}
		for _, vk := range cancel {
			if err := appendRow(batch, stored[k].rows[vk], -1, vk.version); err != nil {
				batch.Abort()
				return err
			}
			n++
		}
		for _, r := range want[k] {
			if err := appendRow(batch, r, 1, version); err != nil {
				batch.Abort()
				return err
			}
			n++
		}
	}
	if n == 0 {
		return batch.Abort()
	}
	if err := batch.Send(); err != nil {
		return classify(insert, err)
	}
	return nil
}

func (v visit) equal(w visit) bool {
	return v.SiteID == w.SiteID && v.SessionID == w.SessionID && v.VisitorID == w.VisitorID &&
		v.Start.Equal(w.Start) && v.End.Equal(w.End) && v.Pageviews == w.Pageviews && v.Events == w.Events && v.Attrs == w.Attrs && v.Engaged == w.Engaged
}

// visitSelect reads the visits columns with the types VisitsSQL gives them.
var visitSelect = func() string {
	cols := make([]string, len(sqlquery.VisitColumns))
	for i, c := range sqlquery.VisitColumns {
		switch c {
		case "pageviews", "events", "engaged":
			cols[i] = "toInt64(" + c + ")"
		default:
			cols[i] = c
		}
	}
	return strings.Join(cols, ", ")
}()

var visitsInsert = "INSERT INTO visits (" + strings.Join(sqlquery.VisitColumns, ", ") + ", sign, version)"

type appender interface{ Append(v ...any) error }

func appendVisit(b appender, v visit, sign int8, version uint32) error {
	args := []any{v.SiteID, v.SessionID, v.VisitorID, v.Start, v.End, uint32(v.Pageviews), uint32(v.Events)}
	for _, a := range v.Attrs {
		args = append(args, a)
	}
	if err := b.Append(append(args, uint32(v.Engaged), sign, version)...); err != nil {
		return &Error{Op: "append visit", Err: err, permanent: true}
	}
	return nil
}

// visitValue is a row of visit_values without its sign and version, its
// fields in the order of VisitValueColumns, then the visit's.
type visitValue struct {
	SiteID            string
	SessionID         uint64
	Dim, Value        string
	Pageviews, Events int64
	Engaged, Depth    int64
	VisitorID         uint64
	Start             time.Time
	Bounce, Duration  int64
}

func (v *visitValue) scanTargets() []any {
	return []any{&v.SiteID, &v.SessionID, &v.Dim, &v.Value, &v.Pageviews, &v.Events, &v.Engaged, &v.Depth,
		&v.VisitorID, &v.Start, &v.Bounce, &v.Duration}
}

// complete sets the columns a visit value copies from its visit.
func (x *visitValue) complete(v visit) {
	x.VisitorID, x.Start, x.Duration = v.VisitorID, v.Start, v.duration()
	if v.Pageviews == 1 && v.Events == 0 {
		x.Bounce = 1
	}
}

func (v visitValue) equal(w visitValue) bool {
	return v.Start.Equal(w.Start) && v.SiteID == w.SiteID && v.Dim == w.Dim && v.Value == w.Value &&
		v.SessionID == w.SessionID && v.VisitorID == w.VisitorID && v.Pageviews == w.Pageviews &&
		v.Events == w.Events && v.Engaged == w.Engaged && v.Depth == w.Depth && v.Bounce == w.Bounce && v.Duration == w.Duration
}

// valueKey names a visit value within its visit.
type valueKey struct{ dim, value string }

// valueSelect reads the visit_values columns in scanTargets' order.
const valueSelect = "site_id, session_id, dim, value, toInt64(pageviews), toInt64(events), toInt64(engaged), " +
	"toInt64(depth), visitor_id, start_ts, toInt64(bounce), toInt64(duration)"

var valuesInsert = "INSERT INTO visit_values (site_id, session_id, dim, value, pageviews, events, engaged, depth, " +
	"visitor_id, start_ts, bounce, duration, sign, version)"

func appendValue(b appender, x visitValue, sign int8, version uint32) error {
	err := b.Append(x.SiteID, x.SessionID, x.Dim, x.Value, uint32(x.Pageviews), uint32(x.Events), uint32(x.Engaged),
		uint8(x.Depth), x.VisitorID, x.Start, uint8(x.Bounce), uint32(max(x.Duration, 0)), sign, version)
	if err != nil {
		return &Error{Op: "append visit value", Err: err, permanent: true}
	}
	return nil
}

// backfillChunk is how many sessions one backfill step rebuilds.
const backfillChunk = 20000

// Backfilled is closed once the visits and visit values of events stored
// before those tables existed are built (or the backfill stopped).
func (s *Store) Backfilled() <-chan struct{} { return s.backfilled }

// backfillVisits builds the visits and visit values of the days that had
// events before those tables existed or gained columns (backfill_days), a
// day at a time, oldest first, and marks each day done for the step that
// queued it. Inserts and the backfill rebuild visits the same
// way and take turns (visitsMu), so they may overlap freely; a restart
// resumes with the first day not done.
func (s *Store) backfillVisits(ctx context.Context, log *slog.Logger) {
	days, err := s.backfillDays(ctx)
	if err != nil || len(days) == 0 {
		if err != nil && ctx.Err() == nil {
			log.Error("chstore: visits backfill", "error", err)
		}
		return
	}
	log.Info("chstore: building visits from stored events", "days", len(days))
	started := time.Now()
	for i, day := range days {
		if err := s.backfillDay(ctx, day); err != nil {
			if ctx.Err() == nil {
				log.Error("chstore: visits backfill stopped; it resumes at the next start", "day", day.day.Format(time.DateOnly), "error", err)
			}
			return
		}
		log.Info("chstore: building visits", "day", day.day.Format(time.DateOnly), "done", fmt.Sprintf("%d/%d", i+1, len(days)))
	}
	log.Info("chstore: visits built", "took", time.Since(started).Round(time.Millisecond))
}

// queuedDay is a day to build and the latest schema step that queued it.
type queuedDay struct {
	day  time.Time
	step uint32
}

func (s *Store) backfillDays(ctx context.Context) ([]queuedDay, error) {
	rows, err := s.conn.Query(ctx, "SELECT day, max(step) FROM backfill_days GROUP BY day "+
		"HAVING maxIf(step, done = 1) < max(step) ORDER BY day")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var days []queuedDay
	for rows.Next() {
		var d queuedDay
		if err := rows.Scan(&d.day, &d.step); err != nil {
			return nil, err
		}
		days = append(days, d)
	}
	return days, rows.Err()
}

// backfillDay rebuilds the visits of the sessions with events on d's day.
func (s *Store) backfillDay(ctx context.Context, d queuedDay) error {
	day := d.day
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	to := from.Add(24*time.Hour - time.Second)
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT site_id, session_id FROM events WHERE toDate(ts) = toDate(toDateTime(?))", from.Unix())
	if err != nil {
		return err
	}
	var all []sessionKey
	for rows.Next() {
		var k sessionKey
		if err := rows.Scan(&k.site, &k.id); err != nil {
			rows.Close()
			return err
		}
		all = append(all, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i := 0; i < len(all); i += backfillChunk {
		keys := map[sessionKey]struct{}{}
		for _, k := range all[i:min(i+backfillChunk, len(all))] {
			keys[k] = struct{}{}
		}
		if err := s.updateVisits(ctx, keys, from, to); err != nil {
			return err
		}
	}
	return s.conn.Exec(ctx, "INSERT INTO backfill_days (day, done, step) SELECT toDate(toDateTime(?)), toUInt8(1), toUInt32(?)",
		from.Unix(), d.step)
}

package chstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

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
}

func (v *visit) scanTargets() []any {
	t := []any{&v.SiteID, &v.SessionID, &v.VisitorID, &v.Start, &v.End, &v.Pageviews, &v.Events}
	for i := range v.Attrs {
		t = append(t, &v.Attrs[i])
	}
	return t
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

// updateVisits makes the visits rows of keys match their events between
// first and last (widened by visitLookback): a session whose rebuilt visit
// differs from its current row gets the current row cancelled (a copy with
// sign -1) and the new one inserted with the next version, in one block. A
// visit that is already up to date is not written, so redelivery changes
// nothing. Updates are serialized within the process: two concurrent
// updates of one visit would cancel its row twice.
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
	withIDs := func() (context.Context, error) {
		table, err := ext.NewTable("batch_sessions", ext.Column("session_id", "UInt64"))
		if err != nil {
			return nil, err
		}
		if _, err := table.Block().Columns[0].Append(ids); err != nil {
			return nil, err
		}
		return clickhouse.Context(ctx, clickhouse.WithExternalTable(table)), nil
	}

	// The visits as their events make them now.
	qctx, err := withIDs()
	if err != nil {
		return classify("rebuild visits", err)
	}
	rebuilt := sqlquery.VisitsSQL(dialect{}, sqlquery.Frag{
		SQL:  "site_id IN ? AND ts >= toDateTime(?) AND ts <= toDateTime(?) AND session_id IN (SELECT session_id FROM batch_sessions)",
		Args: []any{sites, from, to},
	})
	fresh := map[sessionKey]visit{}
	rows, err := s.conn.Query(qctx, rebuilt.SQL, rebuilt.Args...)
	if err != nil {
		return classify("rebuild visits", err)
	}
	for rows.Next() {
		var v visit
		if err := rows.Scan(v.scanTargets()...); err != nil {
			rows.Close()
			return classify("rebuild visits", err)
		}
		if _, ok := keys[sessionKey{v.SiteID, v.SessionID}]; ok {
			fresh[sessionKey{v.SiteID, v.SessionID}] = v
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return classify("rebuild visits", err)
	}

	// Their current rows: per session, the version that no cancel row
	// matches, and the highest version used.
	qctx, err = withIDs()
	if err != nil {
		return classify("read visits", err)
	}
	type state struct {
		live    *visit
		version uint32
		net     map[uint32]int
		rows    map[uint32]visit
	}
	current := map[sessionKey]*state{}
	rows, err = s.conn.Query(qctx, "SELECT "+visitSelect+", sign, version FROM visits WHERE site_id IN ?"+
		" AND start_ts >= toDateTime(?) AND start_ts <= toDateTime(?) AND session_id IN (SELECT session_id FROM batch_sessions)",
		sites, from, to)
	if err != nil {
		return classify("read visits", err)
	}
	for rows.Next() {
		var v visit
		var sign int8
		var version uint32
		if err := rows.Scan(append(v.scanTargets(), &sign, &version)...); err != nil {
			rows.Close()
			return classify("read visits", err)
		}
		k := sessionKey{v.SiteID, v.SessionID}
		st := current[k]
		if st == nil {
			st = &state{net: map[uint32]int{}, rows: map[uint32]visit{}}
			current[k] = st
		}
		st.version = max(st.version, version)
		st.net[version] += int(sign)
		if sign > 0 {
			st.rows[version] = v
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return classify("read visits", err)
	}

	batch, err := s.conn.PrepareBatch(ctx, visitsInsert)
	if err != nil {
		return classify("prepare visits insert", err)
	}
	n := 0
	for k, v := range fresh {
		st := current[k]
		var version uint32 = 1
		if st != nil {
			version = st.version + 1
			for ver, net := range st.net {
				if net <= 0 {
					continue
				}
				old := st.rows[ver]
				if old.equal(&v) {
					version = 0 // up to date
					break
				}
				if err := appendVisit(batch, &old, -1, ver); err != nil {
					batch.Abort()
					return err
				}
				n++
			}
		}
		if version == 0 {
			continue
		}
		if err := appendVisit(batch, &v, 1, version); err != nil {
			batch.Abort()
			return err
		}
		n++
	}
	if n == 0 {
		return batch.Abort()
	}
	if err := batch.Send(); err != nil {
		return classify("insert visits", err)
	}
	return nil
}

func (v *visit) equal(w *visit) bool {
	return v.SiteID == w.SiteID && v.SessionID == w.SessionID && v.VisitorID == w.VisitorID &&
		v.Start.Equal(w.Start) && v.End.Equal(w.End) && v.Pageviews == w.Pageviews && v.Events == w.Events && v.Attrs == w.Attrs
}

// visitSelect reads the visits columns with the types VisitsSQL gives them.
var visitSelect = func() string {
	cols := make([]string, len(sqlquery.VisitColumns))
	for i, c := range sqlquery.VisitColumns {
		switch c {
		case "pageviews", "events":
			cols[i] = "toInt64(" + c + ")"
		default:
			cols[i] = c
		}
	}
	return strings.Join(cols, ", ")
}()

var visitsInsert = "INSERT INTO visits (" + strings.Join(sqlquery.VisitColumns, ", ") + ", sign, version)"

type appender interface{ Append(v ...any) error }

func appendVisit(b appender, v *visit, sign int8, version uint32) error {
	args := []any{v.SiteID, v.SessionID, v.VisitorID, v.Start, v.End, uint32(v.Pageviews), uint32(v.Events)}
	for _, a := range v.Attrs {
		args = append(args, a)
	}
	if err := b.Append(append(args, sign, version)...); err != nil {
		return &Error{Op: "append visit", Err: err, permanent: true}
	}
	return nil
}

// backfillChunk is how many sessions one backfill step rebuilds.
const backfillChunk = 20000

// Backfilled is closed once the visits of events stored before the visits
// table existed are built (or the backfill stopped).
func (s *Store) Backfilled() <-chan struct{} { return s.backfilled }

// backfillVisits builds the visits of the days that had events before the
// visits table existed (visits_backfill), a day at a time, oldest first,
// and marks each day done. Inserts and the backfill rebuild visits the same
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
				log.Error("chstore: visits backfill stopped; it resumes at the next start", "day", day.Format(time.DateOnly), "error", err)
			}
			return
		}
		log.Info("chstore: building visits", "day", day.Format(time.DateOnly), "done", fmt.Sprintf("%d/%d", i+1, len(days)))
	}
	log.Info("chstore: visits built", "took", time.Since(started).Round(time.Millisecond))
}

func (s *Store) backfillDays(ctx context.Context) ([]time.Time, error) {
	rows, err := s.conn.Query(ctx, "SELECT day FROM visits_backfill GROUP BY day HAVING max(done) = 0 ORDER BY day")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var days []time.Time
	for rows.Next() {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		days = append(days, d)
	}
	return days, rows.Err()
}

// backfillDay rebuilds the visits of the sessions with events on day.
func (s *Store) backfillDay(ctx context.Context, day time.Time) error {
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
	return s.conn.Exec(ctx, "INSERT INTO visits_backfill (day, done) SELECT toDate(toDateTime(?)), toUInt8(1)", from.Unix())
}

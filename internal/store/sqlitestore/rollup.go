package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store/sqlquery"
)

// The rollups table holds, per site and UTC hour (slot, unix milliseconds
// of its start), the sums of the visits that started in the hour: all of
// them (dim ''), and by the value of each of sqlquery.RollupDims, with the
// set of their visitors (uniq_set). A slot's rows are rebuilt from its
// visits and visit values whenever one of them changes, in the same
// transaction, so they are as crash- and redelivery-safe as the visits.

// rollupColumns are the columns of rollups in the order rollupSQL selects them.
const rollupColumns = "site_id, dim, slot, value, visits, pageviews, events, bounces, duration, engaged, depth, reported, visitors"

// rollupSQL selects the rollup rows of a site's (?1) slots in [?2, ?3).
var rollupSQL = func() string {
	d := dialect{}
	slot := "(start_ts / " + sqlquery.SlotMillis + " * " + sqlquery.SlotMillis + ")"
	visits := func(dim, value string) string {
		group := "slot"
		if value != "''" {
			group += ", " + value
		}
		return "SELECT site_id, '" + dim + "', " + slot + " AS slot, " + value + ", count(*), sum(pageviews), sum(events), " +
			"sum(CASE WHEN pageviews = 1 AND events = 0 THEN 1 ELSE 0 END), sum(" +
			sqlquery.Duration(d, "start_ts", "end_ts", "engaged") + "), 0, 0, 0, uniq_set(visitor_id) FROM visits " +
			"WHERE site_id = ?1 AND start_ts >= ?2 AND start_ts < ?3 GROUP BY " + group
	}
	parts := []string{visits("", "''")}
	var valueDims []string
	for _, dim := range sqlquery.RollupDims {
		if col := dim.VisitColumn(); col != "" {
			parts = append(parts, visits(string(dim), col))
		} else {
			valueDims = append(valueDims, "'"+string(dim)+"'")
		}
	}
	parts = append(parts, "SELECT site_id, dim, "+slot+" AS slot, value, count(*), sum(pageviews), sum(events), sum(bounce), "+
		"sum(duration), sum(engaged), sum(depth), sum(CASE WHEN depth > 0 THEN 1 ELSE 0 END), uniq_set(visitor_id) "+
		"FROM visit_values WHERE site_id = ?1 AND dim IN ("+strings.Join(valueDims, ", ")+
		") AND start_ts >= ?2 AND start_ts < ?3 GROUP BY dim, slot, value")
	return strings.Join(parts, " UNION ALL ")
}()

// rollupDelete deletes the rollup rows of a site's (?1) slots in [?2, ?3).
var rollupDelete = func() string {
	dims := []string{"''"}
	for _, dim := range sqlquery.RollupDims {
		dims = append(dims, "'"+string(dim)+"'")
	}
	return "DELETE FROM rollups WHERE site_id = ?1 AND dim IN (" + strings.Join(dims, ", ") + ") AND slot >= ?2 AND slot < ?3"
}()

// visitSlots selects the slots of the visits of a site's sessions (see
// sessionsWhere).
const visitSlots = "SELECT DISTINCT start_ts / " + sqlquery.SlotMillis + " * " + sqlquery.SlotMillis +
	" FROM visits WHERE " + sessionsWhere

// slotsOf adds the slots of the visits of a site's sessions to slots.
func slotsOf(ctx context.Context, tx *sql.Tx, site, ids string, slots map[int64]bool) error {
	rows, err := tx.QueryContext(ctx, visitSlots, site, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var slot int64
		if err := rows.Scan(&slot); err != nil {
			return err
		}
		slots[slot] = true
	}
	return rows.Err()
}

// refreshRollups rebuilds the rollups of a site's slots in [from, to).
func refreshRollups(ctx context.Context, tx *sql.Tx, site string, from, to int64) error {
	if _, err := tx.ExecContext(ctx, rollupDelete, site, from, to); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO rollups ("+rollupColumns+") "+rollupSQL, site, from, to)
	return err
}

// backfillRollups builds the rollups of the visits stored before the
// rollups existed, a slot of every site at a time, each step in its own
// transaction with its progress, so the flusher's inserts wait at most one
// step. Inserts rebuild the slots they touch,
// so the two may overlap freely.
func (s *Store) backfillRollups(ctx context.Context, log *slog.Logger) {
	var next, end int64
	err := s.wdb.QueryRowContext(ctx, "SELECT next_row, end_row FROM backfill WHERE name = 'rollups'").Scan(&next, &end)
	if err != nil || next > end {
		if err != nil && err != sql.ErrNoRows {
			log.Error("analytics: rollups backfill", "error", err)
		}
		return
	}
	sites, err := s.sites(ctx)
	if err != nil {
		log.Error("analytics: rollups backfill stopped; it resumes at the next start", "error", err)
		return
	}
	first := next - next%sqlquery.Slot
	log.Info("analytics: building rollups from stored visits", "hours", (end-first)/sqlquery.Slot+1)
	started, lastLog := time.Now(), time.Now()
	for next = first; next <= end; next += sqlquery.Slot {
		if err := s.backfillRollupStep(ctx, sites, next, next+sqlquery.Slot); err != nil {
			if ctx.Err() == nil {
				log.Error("analytics: rollups backfill stopped; it resumes at the next start", "error", err)
			}
			return
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			log.Info("analytics: building rollups", "done", fmt.Sprintf("%.0f%%", 100*float64(next+sqlquery.Slot-first)/float64(end-first+1)))
		}
	}
	log.Info("analytics: rollups built", "took", time.Since(started).Round(time.Millisecond))
}

// sites returns the sites that have visits.
func (s *Store) sites(ctx context.Context) ([]string, error) {
	rows, err := s.wdb.QueryContext(ctx, "SELECT DISTINCT site_id FROM visits")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sites []string
	for rows.Next() {
		var site string
		if err := rows.Scan(&site); err != nil {
			return nil, err
		}
		sites = append(sites, site)
	}
	return sites, rows.Err()
}

// backfillRollupStep rebuilds the sites' rollups of the slots in [from, to)
// and moves the backfill past them, in one transaction.
func (s *Store) backfillRollupStep(ctx context.Context, sites []string, from, to int64) error {
	return s.rebuild(ctx, sites, from, to, "UPDATE backfill SET next_row = ? WHERE name = 'rollups'", to)
}

// refreshSlot rebuilds every site's rollups of one slot.
func (s *Store) refreshSlot(ctx context.Context, slot int64) error {
	sites, err := s.sites(ctx)
	if err != nil {
		return err
	}
	return s.rebuild(ctx, sites, slot, slot+sqlquery.Slot, "")
}

// rebuild rebuilds the sites' rollups of the slots in [from, to), and runs
// then, when set, in the same transaction.
func (s *Store) rebuild(ctx context.Context, sites []string, from, to int64, then string, args ...any) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, site := range sites {
		if err := refreshRollups(ctx, tx, site, from, to); err != nil {
			return err
		}
	}
	if then != "" {
		if _, err := tx.ExecContext(ctx, then, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// backfillChunk is how many events one backfill step reads; each step is
// its own short transaction, so the flusher's inserts wait at most one step.
const backfillChunk = 20000

// Backfilled is closed once the visits, visit values and rollups of data
// stored before those tables existed are built (or the backfills stopped).
func (s *Store) Backfilled() <-chan struct{} { return s.done }

// backfillVisits builds the visits and visit values of the events that were
// stored before those tables existed (the backfill table's range of rowids), a chunk
// at a time, and records its progress with each chunk, so a restart resumes
// where it stopped. Inserts rebuild the visits of their own sessions from
// all of their events, so the two may overlap freely.
func (s *Store) backfillVisits(ctx context.Context, log *slog.Logger) {
	var next, end int64
	err := s.wdb.QueryRowContext(ctx, "SELECT next_row, end_row FROM backfill WHERE name = 'visits'").Scan(&next, &end)
	if err != nil || next > end {
		if err != nil && err != sql.ErrNoRows {
			log.Error("analytics: visits backfill", "error", err)
		}
		return
	}
	log.Info("analytics: building visits from stored events", "events", end-next+1)
	started, lastLog := time.Now(), time.Now()
	for next <= end {
		if err := s.backfillStep(ctx, next, min(next+backfillChunk, end+1)); err != nil {
			if ctx.Err() == nil {
				log.Error("analytics: visits backfill stopped; it resumes at the next start", "error", err)
			}
			return
		}
		next += backfillChunk
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			log.Info("analytics: building visits", "done", fmt.Sprintf("%.0f%%", 100*float64(min(next, end))/float64(end)))
		}
	}
	log.Info("analytics: visits built", "took", time.Since(started).Round(time.Millisecond))
}

// backfillStep rebuilds the visits and visit values of the sessions of events with rowids in
// [from, to) and moves the backfill past them, in one transaction.
func (s *Store) backfillStep(ctx context.Context, from, to int64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT site_id, json_group_array(session_id) FROM
		(SELECT DISTINCT site_id, session_id FROM events WHERE rowid >= ? AND rowid < ?) GROUP BY site_id`, from, to)
	if err != nil {
		return err
	}
	var sites, lists []string
	for rows.Next() {
		var site, list string
		if err := rows.Scan(&site, &list); err != nil {
			rows.Close()
			return err
		}
		sites, lists = append(sites, site), append(lists, list)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range sites {
		if err := upsertVisits(ctx, tx, sites[i], lists[i]); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE backfill SET next_row = ? WHERE name = 'visits'", to); err != nil {
		return err
	}
	return tx.Commit()
}

package sqlitestore

import (
	"context"
	"fmt"
	"time"
)

// deleteChunk is how many rows one retention DELETE removes; inserts get
// the writer connection between chunks.
const deleteChunk = 5000

// DeleteBefore deletes the events older than t, the visits (and their
// values) that started before t and their rollups, and returns how many
// events.
//
// It deletes in chunks, each its own short transaction, so the flusher's
// inserts are never held up for long. Rows arrive roughly in time order, so
// the oldest rows sit at the lowest rowids and each chunk's scan stops soon
// without needing an index on ts alone.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.wdb.ExecContext(ctx,
			"DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE ts < ? LIMIT ?)",
			t.UnixMilli(), deleteChunk)
		if err != nil {
			return total, fmt.Errorf("sqlitestore: retention: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlitestore: retention: %w", err)
		}
		total += n
		if n < deleteChunk {
			break
		}
	}
	// The hour of t keeps its visits from t on: those before leave it and
	// its rollups together. The earlier hours go whole.
	hour := t.UnixMilli() - t.UnixMilli()%slot
	if hour < t.UnixMilli() {
		if err := s.deleteFromHour(ctx, hour, t.UnixMilli()); err != nil {
			return total, fmt.Errorf("sqlitestore: retention: %w", err)
		}
	}
	for _, stmt := range []string{
		"DELETE FROM visits WHERE (site_id, start_ts, session_id) IN (SELECT site_id, start_ts, session_id FROM visits WHERE start_ts < ? LIMIT ?)",
		"DELETE FROM visit_values WHERE (site_id, dim, start_ts, session_id, value) IN " +
			"(SELECT site_id, dim, start_ts, session_id, value FROM visit_values WHERE start_ts < ? LIMIT ?)",
		"DELETE FROM rollups WHERE (site_id, dim, slot, value) IN (SELECT site_id, dim, slot, value FROM rollups WHERE slot < ? LIMIT ?)",
	} {
		for {
			res, err := s.wdb.ExecContext(ctx, stmt, hour, deleteChunk)
			if err != nil {
				return total, fmt.Errorf("sqlitestore: retention: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("sqlitestore: retention: %w", err)
			}
			if n < deleteChunk {
				break
			}
		}
	}
	return total, nil
}

// deleteFromHour deletes every site's visits (and values) that started in
// [from, to), within one rollup hour, and takes their share from its
// rollups, in one transaction.
func (s *Store) deleteFromHour(ctx context.Context, from, to int64) error {
	sites, err := s.sites(ctx)
	if err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, site := range sites {
		if _, err := tx.ExecContext(ctx, rangeRollup, site, from, -1, to); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, emptyRollups, site); err != nil {
			return err
		}
		for _, stmt := range []string{
			"DELETE FROM visits WHERE site_id = ?1 AND start_ts >= ?2 AND start_ts < ?3",
			"DELETE FROM visit_values WHERE site_id = ?1 AND start_ts >= ?2 AND start_ts < ?3",
		} {
			if _, err := tx.ExecContext(ctx, stmt, site, from, to); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

package sqlitestore

import (
	"context"
	"fmt"
	"time"
)

// deleteChunk is how many rows one retention DELETE removes; inserts get
// the writer connection between chunks.
const deleteChunk = 5000

// DeleteBefore deletes the events older than t, and the visits (and their
// values) that started before t, and returns how many events.
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
	for _, stmt := range []string{
		"DELETE FROM visits WHERE (site_id, start_ts, session_id) IN (SELECT site_id, start_ts, session_id FROM visits WHERE start_ts < ? LIMIT ?)",
		"DELETE FROM visit_values WHERE (site_id, dim, start_ts, session_id, value) IN " +
			"(SELECT site_id, dim, start_ts, session_id, value FROM visit_values WHERE start_ts < ? LIMIT ?)",
	} {
		for {
			res, err := s.wdb.ExecContext(ctx, stmt, t.UnixMilli(), deleteChunk)
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

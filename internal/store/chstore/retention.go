package chstore

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DeleteBefore drops every month of events that ended before t, as whole
// partitions (ALTER TABLE … DROP PARTITION, which works on every version and
// costs no rewrite). Rows of t's own month stay until that month is past, or,
// on servers with TTL, until a merge applies the table's TTL. It returns the
// number of partitions dropped; several instances may run it at once.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	t = t.UTC()
	cutoff := t.Year()*100 + int(t.Month())

	// The visits, their values and their rollups go by the month they
	// started in, with their events.
	rows, err := s.conn.Query(ctx,
		"SELECT DISTINCT table, partition FROM system.parts WHERE database = ? AND table IN ('events', 'visits', 'visit_values', 'rollup_hours') AND active",
		s.database)
	if err != nil {
		return 0, classify("list partitions", err)
	}
	type part struct {
		table string
		month int
	}
	var old []part
	for rows.Next() {
		var table, p string
		if err := rows.Scan(&table, &p); err != nil {
			rows.Close()
			return 0, classify("list partitions", err)
		}
		// The partition key is toYYYYMM(ts): the value is a number such as 202401.
		if month, err := strconv.Atoi(strings.Trim(p, "'")); err == nil && month < cutoff {
			old = append(old, part{table, month})
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, classify("list partitions", err)
	}

	dropped := 0
	for _, p := range old {
		if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", p.table, p.month)); err != nil {
			return dropped, classify(fmt.Sprintf("drop partition %d of %s", p.month, p.table), err)
		}
		if p.table == "events" {
			dropped++
		}
	}
	return dropped, nil
}

// retentionLoop drops expired partitions at start and every RetentionInterval
// until ctx is done.
func (s *Store) retentionLoop(ctx context.Context) {
	defer close(s.done)
	ticker := time.NewTicker(s.opts.RetentionInterval)
	defer ticker.Stop()
	for {
		cutoff := time.Now().AddDate(0, 0, -s.opts.RetentionDays)
		runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		n, err := s.DeleteBefore(runCtx, cutoff)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.opts.Logger.Error("chstore: dropping expired partitions failed", "error", err)
		case n > 0:
			s.opts.Logger.Info("chstore: dropped expired partitions", "count", n, "before", cutoff.Format("2006-01"))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// ttlDays matches the TTL that ttlClause writes, as the server prints it back
// in system.tables.engine_full.
var ttlDays = regexp.MustCompile(`TTL ts \+ toIntervalDay\((\d+)\)`)

// applyTTL makes the events table's TTL match RetentionDays on servers that
// support TTL; it changes nothing when it already does (a TTL change may
// rewrite the table's parts).
func (s *Store) applyTTL(ctx context.Context) error {
	if !s.features.TTL {
		return nil
	}
	var engine string
	err := s.conn.QueryRow(ctx,
		"SELECT engine_full FROM system.tables WHERE database = ? AND name = 'events'",
		s.database).Scan(&engine)
	if err != nil {
		return classify("read table ttl", err)
	}
	current := currentTTLDays(engine)
	switch {
	case current == s.opts.RetentionDays:
		return nil
	case current < 0:
		s.opts.Logger.Warn("chstore: the events table has a TTL that Pocketlytics did not set; leaving it as it is",
			"engine", engine)
		return nil
	case s.opts.RetentionDays > 0:
		stmt := fmt.Sprintf("ALTER TABLE events MODIFY TTL ts + INTERVAL %d DAY", s.opts.RetentionDays)
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return classify("set table ttl", err)
		}
		return nil
	}
	// Retention was turned off, but the old TTL would go on deleting rows.
	// Servers before 21.x cannot remove a TTL: say so loudly, keep running.
	if err := s.conn.Exec(ctx, "ALTER TABLE events REMOVE TTL"); err != nil {
		s.opts.Logger.Error("chstore: retention is off but the events table keeps its TTL; "+
			"run ALTER TABLE events MODIFY TTL with a long interval to keep older data",
			"ttlDays", current, "error", err)
	}
	return nil
}

// currentTTLDays returns the days of the table TTL in engine_full: 0 for no
// TTL, -1 for a TTL this package did not write.
func currentTTLDays(engine string) int {
	if !strings.Contains(engine, " TTL ") {
		return 0
	}
	m := ttlDays.FindStringSubmatch(engine)
	if m == nil {
		return -1
	}
	days, _ := strconv.Atoi(m[1])
	return days
}

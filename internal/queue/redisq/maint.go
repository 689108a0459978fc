package redisq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// lagScanCap bounds the fallback count of undelivered entries when Redis
// cannot report the group's lag.
const lagScanCap = 100_000

// Stats reports the group's backlog. Length is the entries not yet
// acknowledged: the group's lag (entries never delivered) plus its pending
// entries. OldestPending is the age of the oldest of them, read from its
// stream id (a millisecond timestamp of Redis' clock).
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	pipe := q.rdb.Pipeline()
	groupsCmd := pipe.XInfoGroups(ctx, q.opts.Stream)
	pendingCmd := pipe.XPending(ctx, q.opts.Stream, q.opts.Group)
	deadCmd := pipe.XLen(ctx, q.opts.DeadStream)
	_, _ = pipe.Exec(ctx)

	var st queue.Stats
	group, err := q.group(groupsCmd)
	if err != nil {
		return st, err
	}
	pending, err := pendingCmd.Result()
	if err != nil {
		return st, fmt.Errorf("redisq: xpending: %w", err)
	}
	if st.DeadLetters, err = deadCmd.Result(); err != nil {
		return st, fmt.Errorf("redisq: xlen: %w", err)
	}

	lag := group.Lag
	if lag < 0 {
		// Redis could not derive it (entries deleted with XDEL after the
		// group's position): count them, up to a cap.
		if lag, err = q.countAfter(ctx, group.LastDeliveredID); err != nil {
			return st, err
		}
	}
	st.Pending = pending.Count
	st.Length = pending.Count + lag

	oldest := ""
	switch {
	case pending.Count > 0:
		oldest = pending.Lower
	case lag > 0:
		first, err := q.rdb.XRangeN(ctx, q.opts.Stream, "("+group.LastDeliveredID, "+", 1).Result()
		if err != nil {
			return st, fmt.Errorf("redisq: xrange: %w", err)
		}
		if len(first) > 0 {
			oldest = first[0].ID
		}
	}
	if ms, ok := idMillis(oldest); ok {
		st.OldestPending = max(0, time.Since(time.UnixMilli(ms)))
	}
	return st, nil
}

// group picks this queue's group out of XINFO GROUPS.
func (q *Queue) group(cmd *redis.XInfoGroupsCmd) (redis.XInfoGroup, error) {
	groups, err := cmd.Result()
	if err != nil {
		return redis.XInfoGroup{}, fmt.Errorf("redisq: xinfo groups: %w", err)
	}
	for _, g := range groups {
		if g.Name == q.opts.Group {
			return g, nil
		}
	}
	return redis.XInfoGroup{}, fmt.Errorf("redisq: group %s on %s does not exist", q.opts.Group, q.opts.Stream)
}

// countAfter counts the entries after id, at most lagScanCap.
func (q *Queue) countAfter(ctx context.Context, id string) (int64, error) {
	var n int64
	start := "(" + id
	for n < lagScanCap {
		page, err := q.rdb.XRangeN(ctx, q.opts.Stream, start, "+", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("redisq: xrange: %w", err)
		}
		n += int64(len(page))
		if len(page) < 1000 {
			break
		}
		start = "(" + page[len(page)-1].ID
	}
	return n, nil
}

// Trim deletes the stream entries that every consumer group has acknowledged:
// everything below the smallest of, over all groups, the oldest pending
// entry and the entry after the last delivered one. It never removes an
// entry that is pending or not yet delivered, and returns how many entries
// it removed. Run it from a maintenance timer, not per hit.
//
// The bound is computed before trimming, and it only grows meanwhile (new
// entries arrive at the tail, acknowledgements shrink the pending lists,
// deliveries move forward), so a stale bound is a conservative one.
func (q *Queue) Trim(ctx context.Context) (int64, error) {
	groups, err := q.rdb.XInfoGroups(ctx, q.opts.Stream).Result()
	if err != nil {
		return 0, fmt.Errorf("redisq: xinfo groups: %w", err)
	}
	if len(groups) == 0 {
		return 0, nil // no consumer at all: nothing is known to be stored
	}

	// Pending lists are read after the groups' positions: an entry pending
	// at the first look and acknowledged by the second is below the old
	// position and stored, so dropping it is right.
	pipe := q.rdb.Pipeline()
	pend := make([]*redis.XPendingCmd, len(groups))
	for i, g := range groups {
		pend[i] = pipe.XPending(ctx, q.opts.Stream, g.Name)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("redisq: xpending: %w", err)
	}

	var bound string
	for i, g := range groups {
		b, err := nextID(g.LastDeliveredID)
		if err != nil {
			return 0, err
		}
		if p := pend[i].Val(); p.Count > 0 && compareIDs(p.Lower, b) < 0 {
			b = p.Lower
		}
		if bound == "" || compareIDs(b, bound) < 0 {
			bound = b
		}
	}

	n, err := q.rdb.XTrimMinID(ctx, q.opts.Stream, bound).Result()
	if err != nil {
		return 0, fmt.Errorf("redisq: xtrim: %w", err)
	}
	return n, nil
}

// parseID splits a stream id "ms-seq".
func parseID(id string) (ms, seq uint64, err error) {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		b = "0"
	}
	if ms, err = strconv.ParseUint(a, 10, 64); err == nil {
		seq, err = strconv.ParseUint(b, 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("redisq: bad stream id %q", id)
	}
	return ms, seq, nil
}

// nextID is the smallest id greater than id.
func nextID(id string) (string, error) {
	ms, seq, err := parseID(id)
	if err != nil {
		return "", err
	}
	if seq == ^uint64(0) {
		if ms == ^uint64(0) {
			return "", errors.New("redisq: no id after the maximum id")
		}
		return strconv.FormatUint(ms+1, 10) + "-0", nil
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10), nil
}

// compareIDs orders two well-formed stream ids numerically.
func compareIDs(a, b string) int {
	ams, aseq, _ := parseID(a)
	bms, bseq, _ := parseID(b)
	switch {
	case ams != bms:
		if ams < bms {
			return -1
		}
		return 1
	case aseq != bseq:
		if aseq < bseq {
			return -1
		}
		return 1
	}
	return 0
}

// idMillis is the millisecond timestamp of a stream id.
func idMillis(id string) (int64, bool) {
	if id == "" {
		return 0, false
	}
	ms, _, err := parseID(id)
	if err != nil || ms == 0 {
		return 0, false
	}
	return int64(ms), true
}

package chstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// columns maps each column of the events table to its value in an event, in
// the order of the insert's explicit column list (18.16 needs one).
var columns = []struct {
	name      string
	appendCol func(*block, driver.BatchColumn) error
}{
	{"id", strCol(func(ev *event.Event) string { return ev.ID })},
	{"ts", col(func(ev *event.Event) time.Time { return ev.Time })},
	{"ts_ms", col(func(ev *event.Event) uint16 { return uint16(ev.Time.Nanosecond() / 1e6) })},
	{"site_id", strCol(func(ev *event.Event) string { return ev.SiteID })},
	{"type", strCol(func(ev *event.Event) string { return ev.Type })},
	{"name", strCol(func(ev *event.Event) string { return ev.Name })},
	{"prop_keys", func(b *block, c driver.BatchColumn) error { return c.Append(b.props().keys) }},
	{"prop_values", func(b *block, c driver.BatchColumn) error { return c.Append(b.props().values) }},
	{"hostname", strCol(func(ev *event.Event) string { return ev.Hostname })},
	{"pathname", strCol(func(ev *event.Event) string { return ev.Pathname })},
	{"title", strCol(func(ev *event.Event) string { return ev.Title })},
	{"referrer_host", strCol(func(ev *event.Event) string { return ev.ReferrerHost })},
	{"channel", strCol(func(ev *event.Event) string { return ev.Channel })},
	{"utm_source", strCol(func(ev *event.Event) string { return ev.UTMSource })},
	{"utm_medium", strCol(func(ev *event.Event) string { return ev.UTMMedium })},
	{"utm_campaign", strCol(func(ev *event.Event) string { return ev.UTMCampaign })},
	{"utm_term", strCol(func(ev *event.Event) string { return ev.UTMTerm })},
	{"utm_content", strCol(func(ev *event.Event) string { return ev.UTMContent })},
	{"country", strCol(func(ev *event.Event) string { return ev.Country })},
	{"region", strCol(func(ev *event.Event) string { return ev.Region })},
	{"city", strCol(func(ev *event.Event) string { return ev.City })},
	{"latitude", col(func(ev *event.Event) float64 { return ev.Latitude })},
	{"longitude", col(func(ev *event.Event) float64 { return ev.Longitude })},
	{"device", strCol(func(ev *event.Event) string { return ev.Device })},
	{"browser", strCol(func(ev *event.Event) string { return ev.Browser })},
	{"os", strCol(func(ev *event.Event) string { return ev.OS })},
	{"screen_width", col(func(ev *event.Event) uint16 { return uint16(min(max(ev.ScreenWidth, 0), 65535)) })},
	{"visitor_id", col(func(ev *event.Event) uint64 { return ev.VisitorID })},
	{"session_id", col(func(ev *event.Event) uint64 { return ev.SessionID })},
	{"entry", col(func(ev *event.Event) uint8 {
		if ev.Entry {
			return 1
		}
		return 0
	})},
	{"engaged", col(func(ev *event.Event) uint32 { return uint32(min(max(ev.Engaged, 0), 1<<32-1)) })},
	{"scroll", col(func(ev *event.Event) uint8 { return uint8(min(max(ev.Scroll, 0), 100)) })},
	{"revenue_amount", col(func(ev *event.Event) int64 { return ev.RevenueAmount })},
	{"revenue_currency", strCol(func(ev *event.Event) string { return ev.RevenueCurrency })},
}

// block is the events of one insert on their way to columns.
type block struct {
	events []event.Event
	split  *splitProps
	strs   []string // see strCol
}

// splitProps are the props as parallel key and value arrays, sorted by key
// so equal maps give equal rows.
type splitProps struct {
	keys, values [][]string
}

// props splits the props once for both of their columns.
func (b *block) props() *splitProps {
	if b.split != nil {
		return b.split
	}
	b.split = &splitProps{keys: make([][]string, len(b.events)), values: make([][]string, len(b.events))}
	for i := range b.events {
		props := b.events[i].Props
		if len(props) == 0 {
			b.split.keys[i], b.split.values[i] = noStrings, noStrings
			continue
		}
		keys := slices.Sorted(maps.Keys(props))
		values := make([]string, len(keys))
		for j, k := range keys {
			values[j] = props[k]
		}
		b.split.keys[i], b.split.values[i] = keys, values
	}
	return b.split
}

// noStrings is the prop arrays of most events; the driver only reads it.
var noStrings = []string{}

// col appends a whole column at once: appending a slice per column is
// several times faster than appending row by row.
func col[T any](value func(*event.Event) T) func(*block, driver.BatchColumn) error {
	return func(b *block, c driver.BatchColumn) error {
		out := make([]T, len(b.events))
		for i := range b.events {
			out[i] = value(&b.events[i])
		}
		return c.Append(out)
	}
}

// strCol is col for a string column. The string columns, most of the
// table, take turns with one slice per block (the driver copies what it
// is given): a slice per column was 3% of the bytes the app allocated
// flat out.
func strCol(value func(*event.Event) string) func(*block, driver.BatchColumn) error {
	return func(b *block, c driver.BatchColumn) error {
		if len(b.strs) != len(b.events) {
			b.strs = make([]string, len(b.events))
		}
		for i := range b.events {
			b.strs[i] = value(&b.events[i])
		}
		return c.Append(b.strs)
	}
}

var insertQuery = func() string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
	}
	return "INSERT INTO events (" + strings.Join(names, ", ") + ")"
}()

// DateTime's range; a time outside it would wrap around silently.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Insert writes a batch of events, idempotently.
//
// A batch of at most max_insert_block_size rows is sent as one native block,
// which MergeTree writes as one part per month touched: all of the batch's
// rows of a month become visible together or not at all. Before writing, the
// store looks up which of the batch's event ids are already stored (within
// the batch's sites and time range) and writes only the others, so a batch
// delivered again after a crash between insert and ack, or a retry after an
// ambiguous network error, or a redelivered batch that only partly overlaps
// the first one, adds no row twice.
//
// Servers that support it also drop a block they already have by its
// insert_deduplication_token, which closes the window in which two flushers
// insert the same batch at once. The block token is the batch token bound to
// the block's event ids: after the check removed rows, the same batch token
// names different rows, and the server must not take them for a repeat.
//
// The check runs for every batch, so it needs no help from the flusher: it
// also covers an in-process retry, where the queue's delivery count has not
// moved. It costs one query that reads the batch's ids (as external data)
// and the granules of the batch's sites within its time range. On a 2-core
// machine with 18.16 that is about 5–15 ms for 10,000 ids (the upper figure
// when all are stored), a quarter of a 10,000-row insert and a few percent
// of a 100,000-row one; see BenchmarkStoredIDs.
func (s *Store) Insert(ctx context.Context, token string, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := validate(events); err != nil {
		return err
	}

	stored, err := s.storedIDs(ctx, events)
	if err != nil {
		return err
	}
	fresh := events
	if len(stored) > 0 {
		fresh = slices.DeleteFunc(slices.Clone(events), func(ev event.Event) bool {
			_, ok := stored[ev.ID]
			return ok
		})
	}

	// A batch larger than one block goes in several blocks, each atomic on
	// its own; a retry after a failure in between resumes through the
	// stored-id check.
	size := s.features.MaxInsertBlockSize
	for i := 0; i < len(fresh); i += size {
		if err := s.insertBlock(ctx, token, fresh[i:min(i+size, len(fresh))]); err != nil {
			return err
		}
	}
	// The visits follow the stored events, also when every event was
	// stored before: the batch may be redelivered after a crash that came
	// between the two writes.
	return s.refreshVisits(ctx, events)
}

// insertBlock sends events as one native block.
func (s *Store) insertBlock(ctx context.Context, token string, events []event.Event) error {
	if s.features.TokenDeduplication() {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_deduplication_token": blockToken(token, events),
		}))
	}
	batch, err := s.conn.PrepareBatch(ctx, insertQuery)
	if err != nil {
		return classify("prepare insert", err)
	}
	b := &block{events: events}
	for i, c := range columns {
		if err := c.appendCol(b, batch.Column(i)); err != nil {
			batch.Abort()
			return &Error{Op: "append " + c.name, Err: err, permanent: true}
		}
	}
	if err := batch.Send(); err != nil {
		return classify("insert", err)
	}
	return nil
}

// blockToken binds the batch token to the ids of the block's events.
func blockToken(token string, events []event.Event) string {
	h := fnv.New64a()
	for i := range events {
		h.Write([]byte(events[i].ID))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%s:%d:%016x", token, len(events), h.Sum64())
}

// validate rejects events that ClickHouse would store wrongly. Such an event
// cannot be fixed by retrying, so the error is permanent.
func validate(events []event.Event) error {
	for _, ev := range events {
		if ev.Time.Before(minTime) || ev.Time.After(maxTime) {
			return permanentf("insert", "event %s: time %s is outside ClickHouse's DateTime range",
				ev.ID, ev.Time.Format(time.RFC3339))
		}
	}
	return nil
}

// storedIDs returns which ids of the batch are already in the table.
//
// The lookup is bounded by the batch's sites and its time range, which the
// table's sort key (site_id, toDate(ts), ts) narrows to the few granules that
// can hold the batch: its cost grows with the rows those sites stored during
// that range, not with the table. The ids go to the server as external data,
// so no query text grows with the batch.
func (s *Store) storedIDs(ctx context.Context, events []event.Event) (map[string]struct{}, error) {
	first, last := events[0].Time, events[0].Time
	siteSet := make(map[string]struct{})
	sites := clickhouse.GroupSet{}
	table, err := ext.NewTable("batch_ids", ext.Column("id", "String"))
	if err != nil {
		return nil, classify("check stored ids", err)
	}
	ids := make([]string, len(events))
	for i, ev := range events {
		ids[i] = ev.ID
		if _, ok := siteSet[ev.SiteID]; !ok {
			siteSet[ev.SiteID] = struct{}{}
			sites.Value = append(sites.Value, ev.SiteID)
		}
		if ev.Time.Before(first) {
			first = ev.Time
		}
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	if _, err := table.Block().Columns[0].Append(ids); err != nil {
		return nil, classify("check stored ids", err)
	}

	ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(table))
	rows, err := s.conn.Query(ctx, `SELECT id FROM events
		WHERE site_id IN ?
		  AND ts BETWEEN toDateTime(?) AND toDateTime(?)
		  AND id IN (SELECT id FROM batch_ids)`,
		sites, first.Unix(), last.Unix())
	if err != nil {
		return nil, classify("check stored ids", err)
	}
	defer rows.Close()
	stored := make(map[string]struct{})
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, classify("check stored ids", err)
		}
		stored[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, classify("check stored ids", err)
	}
	return stored, nil
}

package chstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// columns maps each column of the events table to its value in an event, in
// the order of the insert's explicit column list (18.16 needs one).
var columns = []struct {
	name   string
	values func([]event.Event) any
}{
	{"id", col(func(ev *event.Event) string { return ev.ID })},
	{"ts", col(func(ev *event.Event) time.Time { return ev.Time })},
	{"site_id", col(func(ev *event.Event) string { return ev.SiteID })},
	{"type", col(func(ev *event.Event) string { return ev.Type })},
	{"name", col(func(ev *event.Event) string { return ev.Name })},
	{"prop_keys", col(func(ev *event.Event) []string { k, _ := splitProps(ev.Props); return k })},
	{"prop_values", col(func(ev *event.Event) []string { _, v := splitProps(ev.Props); return v })},
	{"hostname", col(func(ev *event.Event) string { return ev.Hostname })},
	{"pathname", col(func(ev *event.Event) string { return ev.Pathname })},
	{"title", col(func(ev *event.Event) string { return ev.Title })},
	{"referrer_host", col(func(ev *event.Event) string { return ev.ReferrerHost })},
	{"channel", col(func(ev *event.Event) string { return ev.Channel })},
	{"utm_source", col(func(ev *event.Event) string { return ev.UTMSource })},
	{"utm_medium", col(func(ev *event.Event) string { return ev.UTMMedium })},
	{"utm_campaign", col(func(ev *event.Event) string { return ev.UTMCampaign })},
	{"utm_term", col(func(ev *event.Event) string { return ev.UTMTerm })},
	{"utm_content", col(func(ev *event.Event) string { return ev.UTMContent })},
	{"country", col(func(ev *event.Event) string { return ev.Country })},
	{"region", col(func(ev *event.Event) string { return ev.Region })},
	{"city", col(func(ev *event.Event) string { return ev.City })},
	{"latitude", col(func(ev *event.Event) float64 { return ev.Latitude })},
	{"longitude", col(func(ev *event.Event) float64 { return ev.Longitude })},
	{"device", col(func(ev *event.Event) string { return ev.Device })},
	{"browser", col(func(ev *event.Event) string { return ev.Browser })},
	{"os", col(func(ev *event.Event) string { return ev.OS })},
	{"screen_width", col(func(ev *event.Event) uint16 { return uint16(min(max(ev.ScreenWidth, 0), 65535)) })},
	{"visitor_id", col(func(ev *event.Event) uint64 { return ev.VisitorID })},
	{"session_id", col(func(ev *event.Event) uint64 { return ev.SessionID })},
	{"entry", col(func(ev *event.Event) uint8 {
		if ev.Entry {
			return 1
		}
		return 0
	})},
}

// col builds a whole column at once: appending a slice per column is
// several times faster than appending row by row.
func col[T any](value func(*event.Event) T) func([]event.Event) any {
	return func(events []event.Event) any {
		out := make([]T, len(events))
		for i := range events {
			out[i] = value(&events[i])
		}
		return out
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
// the first one, adds no row twice. Servers that support it also get the
// token as insert_deduplication_token.
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
	if len(stored) > 0 {
		events = slices.DeleteFunc(slices.Clone(events), func(ev event.Event) bool {
			_, ok := stored[ev.ID]
			return ok
		})
		if len(events) == 0 {
			return nil
		}
	}

	// A batch larger than one block goes in several blocks, each atomic on
	// its own; a retry after a failure in between resumes through the
	// stored-id check.
	size := s.features.MaxInsertBlockSize
	for i := 0; i < len(events); i += size {
		blockToken := token
		if i > 0 {
			blockToken = fmt.Sprintf("%s/%d", token, i/size)
		}
		if err := s.insertBlock(ctx, blockToken, events[i:min(i+size, len(events))]); err != nil {
			return err
		}
	}
	return nil
}

// insertBlock sends events as one native block.
func (s *Store) insertBlock(ctx context.Context, token string, events []event.Event) error {
	if token != "" && s.features.TokenDeduplication() {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"insert_deduplication_token": token,
		}))
	}
	batch, err := s.conn.PrepareBatch(ctx, insertQuery)
	if err != nil {
		return classify("prepare insert", err)
	}
	for i, c := range columns {
		if err := batch.Column(i).Append(c.values(events)); err != nil {
			batch.Abort()
			return &Error{Op: "append " + c.name, Err: err, permanent: true}
		}
	}
	if err := batch.Send(); err != nil {
		return classify("insert", err)
	}
	return nil
}

// splitProps returns the props as parallel key and value arrays, sorted by
// key so equal maps give equal rows.
func splitProps(props map[string]string) (keys, values []string) {
	keys = slices.Sorted(maps.Keys(props))
	if keys == nil {
		keys = []string{}
	}
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = props[k]
	}
	return keys, values
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

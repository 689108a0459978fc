package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/store"
)

// CheckRedelivery loads KnownEvents into an empty store the hard way, one
// event per batch from the last to the first (every visit's row is rebuilt
// as its earlier events arrive), then delivers all of them again as one
// batch and again in halves, and checks the known answers: a visit must not
// count twice however its events arrive.
func CheckRedelivery(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	evs := KnownEvents()
	for i := len(evs) - 1; i >= 0; i-- {
		if err := s.Insert(ctx, "one", evs[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	Redeliver(t, s, evs)
	CheckKnown(t, s)
}

// Redeliver inserts evs again, as one batch and then as its two halves, as
// a queue redelivers what it could not confirm.
func Redeliver(t testing.TB, s store.Store, evs []event.Event) {
	t.Helper()
	for _, batch := range [][]event.Event{evs, evs[:len(evs)/2], evs[len(evs)/2:]} {
		if err := s.Insert(context.Background(), "again", slices.Clone(batch)); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckGuards checks the query limits on a store holding KnownEvents: the
// largest filters the API accepts run (ClickHouse once refused them as too
// long a statement), larger ones are refused as invalid, and a query past
// its deadline fails with store.ErrTimeout.
func CheckGuards(t *testing.T, q store.Querier) {
	t.Helper()
	ctx := context.Background()
	long := func(n, size int) []string {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = strings.Repeat(string(rune('a'+i%26)), size)
		}
		return vals
	}
	query := func(filters ...store.Filter) store.Query {
		return store.Query{SiteID: KnownSite, From: KnownFrom, To: KnownTo, Location: time.UTC, Filters: filters}
	}
	big := []store.Filter{
		{Dimension: store.DimPage, Op: store.OpContains, Values: long(30, store.MaxValueLength)},
		{Dimension: store.DimCountry, Op: store.OpIsNot, Values: long(2, 1000)},
	}
	for _, dim := range []store.Dimension{store.DimPage, store.DimCountry} {
		t.Run("largest accepted filters/"+string(dim), func(t *testing.T) {
			if _, err := q.Overview(ctx, query(big...)); err != nil {
				t.Fatalf("overview: %v", err)
			}
			if _, err := q.Timeseries(ctx, query(big...), store.IntervalHour); err != nil {
				t.Fatalf("timeseries: %v", err)
			}
			if _, err := q.Breakdown(ctx, query(big...), dim, 10, 0); err != nil {
				t.Fatalf("breakdown: %v", err)
			}
		})
	}
	t.Run("filters over the byte limit", func(t *testing.T) {
		tooBig := query(store.Filter{Dimension: store.DimPage, Op: store.OpContains, Values: long(33, store.MaxValueLength)})
		if _, err := q.Overview(ctx, tooBig); !errors.Is(err, store.ErrInvalidQuery) {
			t.Fatalf("err %v, want store.ErrInvalidQuery", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
		defer cancel()
		<-dctx.Done()
		if _, err := q.Overview(dctx, query()); !errors.Is(err, store.ErrTimeout) {
			t.Fatalf("err %v, want store.ErrTimeout", err)
		}
	})
}

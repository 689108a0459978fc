// Package salt keeps the daily salts that visitor ids are hashed with. A
// salt lives for one UTC day as "today" and one more as "yesterday" (so a
// visit across midnight keeps its visitor), then it is deleted: ids of
// different days cannot be linked, and nobody can recompute an old id.
//
// A Ring holds the two current salts for lock-free reads on the ingest path.
// A Store persists them so restarts, and every instance sharing the store,
// hash with the same salts:
//
//	ring, err := salt.Register(app, salt.NewRedisStore(client, "pl:"))
//	s := ring.Salts(time.Now()) // s.Today, s.Yesterday
package salt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Size is the length of a salt in bytes.
const Size = 32

// DayLayout formats a UTC day, the key of a salt.
const DayLayout = "2006-01-02"

// Salts is an immutable snapshot of the current salts.
type Salts struct {
	Day       string // UTC day of Today (YYYY-MM-DD)
	Today     []byte
	Yesterday []byte

	end         int64 // unix seconds of the midnight that ends Day
	provisional bool  // from a fallback store: load again on the next Rotate
}

// Store persists salts by UTC day.
type Store interface {
	// Salt returns the salt of day, storing fresh as that day's salt if it has
	// none yet. Concurrent calls for a day, from any instance sharing the
	// store, return the same salt.
	Salt(ctx context.Context, day string, fresh []byte) ([]byte, error)

	// Prune deletes the salts of the days before day.
	Prune(ctx context.Context, before string) error
}

// Ring holds today's and yesterday's salt. Salts is lock-free; Rotate loads
// new salts from the store when the UTC day changes.
type Ring struct {
	store Store
	cur   atomic.Pointer[Salts]

	mu         sync.Mutex // serialises Rotate
	pruned     string     // day before which salts were last pruned; under mu
	refreshing atomic.Bool

	// Logger receives failures of background rotations (default slog.Default()).
	Logger *slog.Logger
}

// NewRing returns an empty ring over store; a nil store keeps salts in
// process memory only (ids then change when the process restarts). Call
// Rotate before Salts, or use Register, which does.
func NewRing(store Store) *Ring {
	if store == nil {
		store = NewMemoryStore()
	}
	return &Ring{store: store}
}

// Salts returns the current salts, or nil before the first successful
// Rotate. It never blocks: when now is past the ring's day it starts a
// background rotation and returns the previous salts until that completes.
func (r *Ring) Salts(now time.Time) *Salts {
	s := r.cur.Load()
	if s == nil || now.Unix() >= s.end {
		r.rotateAsync(now)
	}
	return s
}

func (r *Ring) rotateAsync(now time.Time) {
	if !r.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := r.Rotate(ctx, now); err != nil {
			r.logger().Error("salt: rotation failed", slog.String("error", err.Error()))
		}
	}()
}

// Rotate makes now's UTC day current: it loads (or creates) that day's and
// the previous day's salt, then deletes older salts. Once the day is current
// and pruned it does no I/O, so it is cheap to call often.
func (r *Ring) Rotate(ctx context.Context, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	today := Day(now)
	start, _ := time.Parse(DayLayout, today)
	yesterday := Day(start.AddDate(0, 0, -1))

	if s := r.cur.Load(); s == nil || s.Day != today || s.provisional {
		t, tp, err := r.load(ctx, today)
		if err != nil {
			return err
		}
		y, yp, err := r.load(ctx, yesterday)
		if err != nil {
			return err
		}
		next := &Salts{Day: today, Today: t, Yesterday: y, end: start.AddDate(0, 0, 1).Unix(), provisional: tp || yp}
		if next.provisional {
			r.logger().Warn("salt: the shared salt store is unreachable; hashing with this instance's own salts until it answers")
		} else if s != nil && s.provisional {
			r.logger().Info("salt: the shared salt store answers again")
		}
		r.cur.Store(next)
	}

	// Retried by the next call when it fails: old salts must not linger.
	if r.pruned != yesterday {
		if err := r.store.Prune(ctx, yesterday); err != nil {
			return fmt.Errorf("salt: prune before %s: %w", yesterday, err)
		}
		r.pruned = yesterday
	}
	return nil
}

// load returns day's salt and whether it is provisional (ErrProvisional).
func (r *Ring) load(ctx context.Context, day string) ([]byte, bool, error) {
	fresh := make([]byte, Size)
	rand.Read(fresh)
	s, err := r.store.Salt(ctx, day, fresh)
	provisional := errors.Is(err, ErrProvisional)
	if err != nil && !provisional {
		return nil, false, fmt.Errorf("salt: load %s: %w", day, err)
	}
	if len(s) != Size {
		return nil, false, fmt.Errorf("salt: stored salt of %s has %d bytes, want %d", day, len(s), Size)
	}
	return s, provisional, nil
}

// Provisional reports whether the current salts came from a fallback store.
func (r *Ring) Provisional() bool {
	s := r.cur.Load()
	return s != nil && s.provisional
}

func (r *Ring) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// Day returns the UTC day of t, the key of its salt.
func Day(t time.Time) string {
	return t.UTC().Format(DayLayout)
}

// MemoryStore keeps salts in process memory. It suits a single instance
// that may forget its salts on restart, and tests.
type MemoryStore struct {
	mu    sync.Mutex
	salts map[string][]byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{salts: map[string][]byte{}}
}

// Salt implements Store.
func (m *MemoryStore) Salt(_ context.Context, day string, fresh []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.salts[day]; ok {
		return s, nil
	}
	s := append([]byte(nil), fresh...)
	m.salts[day] = s
	return s, nil
}

// Prune implements Store.
func (m *MemoryStore) Prune(_ context.Context, before string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for day := range m.salts {
		if day < before {
			delete(m.salts, day)
		}
	}
	return nil
}

// Days lists the days with a stored salt, for tests and diagnostics.
func (m *MemoryStore) Days() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	days := make([]string, 0, len(m.salts))
	for d := range m.salts {
		days = append(days, d)
	}
	return days
}

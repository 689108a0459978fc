package salt_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/salt"
)

var (
	day1 = time.Date(2025, 3, 10, 23, 59, 30, 0, time.UTC)
	day2 = time.Date(2025, 3, 11, 0, 0, 5, 0, time.UTC)
	day4 = time.Date(2025, 3, 13, 12, 0, 0, 0, time.UTC)
)

// testStore runs the Store contract against a fresh store from newStore.
func testStore(t *testing.T, newStore func(t *testing.T) salt.Store) {
	ctx := context.Background()

	t.Run("rotation keeps yesterday and drops older", func(t *testing.T) {
		r := salt.NewRing(newStore(t))
		if err := r.Rotate(ctx, day1); err != nil {
			t.Fatal(err)
		}
		s1 := r.Salts(day1)
		if s1 == nil || s1.Day != "2025-03-10" || len(s1.Today) != salt.Size || len(s1.Yesterday) != salt.Size {
			t.Fatalf("salts after rotate = %+v", s1)
		}
		if bytes.Equal(s1.Today, s1.Yesterday) {
			t.Fatal("today's and yesterday's salt are equal")
		}

		if err := r.Rotate(ctx, day1.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r.Salts(day1) != s1 {
			t.Fatal("a rotation within the same day replaced the salts")
		}

		if err := r.Rotate(ctx, day2); err != nil {
			t.Fatal(err)
		}
		s2 := r.Salts(day2)
		if s2.Day != "2025-03-11" || !bytes.Equal(s2.Yesterday, s1.Today) || bytes.Equal(s2.Today, s1.Today) {
			t.Fatalf("after midnight: day %s, yesterday==old today %v", s2.Day, bytes.Equal(s2.Yesterday, s1.Today))
		}

		// Two days later neither old salt may come back.
		if err := r.Rotate(ctx, day4); err != nil {
			t.Fatal(err)
		}
		s4 := r.Salts(day4)
		for _, old := range [][]byte{s1.Yesterday, s1.Today, s2.Today} {
			if bytes.Equal(s4.Today, old) || bytes.Equal(s4.Yesterday, old) {
				t.Fatal("an old salt survived two rotations")
			}
		}
	})

	t.Run("instances sharing the store agree", func(t *testing.T) {
		store := newStore(t)
		a, b := salt.NewRing(store), salt.NewRing(store)
		if err := a.Rotate(ctx, day2); err != nil {
			t.Fatal(err)
		}
		if err := b.Rotate(ctx, day2); err != nil {
			t.Fatal(err)
		}
		sa, sb := a.Salts(day2), b.Salts(day2)
		if !bytes.Equal(sa.Today, sb.Today) || !bytes.Equal(sa.Yesterday, sb.Yesterday) {
			t.Fatal("two rings on one store hold different salts")
		}
	})

	t.Run("prune", func(t *testing.T) {
		store := newStore(t)
		first := map[string][]byte{}
		for _, day := range []string{"2025-03-08", "2025-03-09", "2025-03-10", "2025-03-11"} {
			s, err := store.Salt(ctx, day, fresh(day))
			if err != nil {
				t.Fatal(err)
			}
			first[day] = s
		}
		if err := store.Prune(ctx, "2025-03-10"); err != nil {
			t.Fatal(err)
		}
		for day, s := range first {
			got, err := store.Salt(ctx, day, fresh("new "+day))
			if err != nil {
				t.Fatal(err)
			}
			kept := bytes.Equal(got, s)
			if want := day >= "2025-03-10"; kept != want {
				t.Errorf("%s kept = %v, want %v", day, kept, want)
			}
		}
	})
}

func fresh(seed string) []byte {
	b := make([]byte, salt.Size)
	copy(b, seed)
	return b
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(t *testing.T) salt.Store { return salt.NewMemoryStore() })

	t.Run("ring prunes the store", func(t *testing.T) {
		store := salt.NewMemoryStore()
		r := salt.NewRing(store)
		for _, now := range []time.Time{day1, day2, day4} {
			if err := r.Rotate(context.Background(), now); err != nil {
				t.Fatal(err)
			}
		}
		days := store.Days()
		slices.Sort(days)
		if want := []string{"2025-03-12", "2025-03-13"}; !slices.Equal(days, want) {
			t.Fatalf("stored days = %v, want %v", days, want)
		}
	})
}

func TestSaltsRotatesInBackground(t *testing.T) {
	r := salt.NewRing(nil)
	now := time.Now()
	if s := r.Salts(now); s != nil {
		t.Fatalf("Salts before any rotation = %+v, want nil", s)
	}
	s := eventually(t, func() *salt.Salts { return r.Salts(now) }, func(s *salt.Salts) bool { return s != nil })
	if s.Day != salt.Day(now) {
		t.Fatalf("day = %s, want %s", s.Day, salt.Day(now))
	}

	// The next day: the old salts are served until the new ones are loaded.
	tomorrow := now.Add(24 * time.Hour)
	if got := r.Salts(tomorrow); got == nil {
		t.Fatal("Salts returned nil while rotating")
	}
	s2 := eventually(t, func() *salt.Salts { return r.Salts(tomorrow) }, func(s *salt.Salts) bool { return s.Day == salt.Day(tomorrow) })
	if !bytes.Equal(s2.Yesterday, s.Today) {
		t.Fatal("background rotation lost yesterday's salt")
	}
}

// eventually polls get until ok holds; a background rotation has no other signal.
func eventually[T any](t *testing.T, get func() T, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := get()
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met; last value %+v", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkSalts(b *testing.B) {
	r := salt.NewRing(nil)
	now := time.Now()
	if err := r.Rotate(context.Background(), now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r.Salts(now) == nil {
				b.Fatal("nil salts")
			}
		}
	})
}

package salt

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// A Redis outage at start must not stop the ring: it hashes with the local
// store's salts and takes the shared ones as soon as Redis answers.
func TestFallbackStoreDuringRedisOutage(t *testing.T) {
	shared := testutil.Redis(t)
	opts, err := redis.ParseURL(testutil.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testutil.StartProxy(t, opts.Addr)
	opts.Addr = proxy.Addr
	opts.MaxRetries = -1
	viaProxy := redis.NewClient(opts)
	t.Cleanup(func() { viaProxy.Close() })

	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	local := NewMemoryStore()
	ring := NewRing(FallbackStore{
		Primary:  NewRedisStore(viaProxy, prefix),
		Fallback: local,
		Timeout:  500 * time.Millisecond,
	})
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

	proxy.Cut()
	if err := ring.Rotate(ctx, now); err == nil {
		t.Fatal("Rotate should report that pruning the shared store failed")
	}
	s := ring.Salts(now)
	if s == nil || !ring.Provisional() {
		t.Fatalf("want provisional salts during the outage, got %+v", s)
	}
	if got, _ := local.Salt(ctx, Day(now), nil); !bytes.Equal(got, s.Today) {
		t.Fatal("provisional salt should be the local store's")
	}

	// Another instance fixes the day's shared salt meanwhile.
	sharedSalt := bytes.Repeat([]byte{7}, Size)
	if _, err := NewRedisStore(shared, prefix).Salt(ctx, Day(now), sharedSalt); err != nil {
		t.Fatal(err)
	}

	proxy.Restore()
	if err := ring.Rotate(ctx, now); err != nil {
		t.Fatalf("Rotate after the outage: %v", err)
	}
	if ring.Provisional() {
		t.Fatal("salts should no longer be provisional")
	}
	if got := ring.Salts(now).Today; !bytes.Equal(got, sharedSalt) {
		t.Fatal("after the outage the ring should hash with the shared salt")
	}
}

func TestFallbackStoreBothFail(t *testing.T) {
	client := testutil.Redis(t)
	prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
	// A WRONGTYPE value makes the shared store fail with a real Redis error.
	day := "2026-11-27"
	if err := client.HSet(context.Background(), prefix+"salt:"+day, "x", "y").Err(); err != nil {
		t.Fatal(err)
	}

	f := FallbackStore{Primary: NewRedisStore(client, prefix), Fallback: NewRedisStore(client, prefix)}
	_, err := f.Salt(context.Background(), day, make([]byte, Size))
	if err == nil || errors.Is(err, ErrProvisional) {
		t.Fatalf("want a hard error when both stores fail, got %v", err)
	}
}

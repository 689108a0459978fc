package salt_test

import (
	"context"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/salt"
	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

func TestRedisStore(t *testing.T) {
	client := testutil.Redis(t)
	newStore := func(t *testing.T) salt.Store {
		prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
		return salt.NewRedisStore(client, prefix)
	}
	testStore(t, newStore)

	t.Run("keys expire on their own", func(t *testing.T) {
		ctx := context.Background()
		prefix := testutil.RedisPrefix(t, "pl_test_") + ":"
		store := salt.NewRedisStore(client, prefix)
		want := fresh("x")
		if _, err := store.Salt(ctx, "2025-03-11", want); err != nil {
			t.Fatal(err)
		}
		ttl, err := client.TTL(ctx, prefix+"salt:2025-03-11").Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 2*24*time.Hour || ttl > 3*24*time.Hour {
			t.Fatalf("TTL = %v, want about 3 days", ttl)
		}
		got, err := client.Get(ctx, prefix+"salt:2025-03-11").Bytes()
		if err != nil || string(got) != string(want) {
			t.Fatalf("stored value = %x, %v", got, err)
		}
	})
}

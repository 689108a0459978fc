package salt

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// redisTTL outlives a salt's two days of use by a day of clock skew between
// instances; Prune deletes it earlier.
const redisTTL = 3 * 24 * time.Hour

// RedisStore shares salts between instances through Redis keys
// "<prefix>salt:YYYY-MM-DD". The first instance to need a day's salt sets it
// (SET NX); everyone reads the winner's.
type RedisStore struct {
	client redis.Cmdable
	prefix string
}

// NewRedisStore returns a store on client whose keys start with prefix
// (the deployment's REDIS_PREFIX; empty means config.RedisPrefix).
func NewRedisStore(client redis.Cmdable, prefix string) *RedisStore {
	if prefix == "" {
		prefix = config.RedisPrefix
	}
	return &RedisStore{client: client, prefix: prefix + "salt:"}
}

// Salt implements Store.
func (s *RedisStore) Salt(ctx context.Context, day string, fresh []byte) ([]byte, error) {
	key := s.prefix + day
	var get *redis.StringCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, fresh, redisTTL)
		get = p.Get(ctx, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return get.Bytes()
}

// Prune implements Store. Keys older than the few days it deletes have
// already expired.
func (s *RedisStore) Prune(ctx context.Context, before string) error {
	start, err := time.Parse(DayLayout, before)
	if err != nil {
		return err
	}
	keys := make([]string, 0, 3)
	for i := 1; i <= 3; i++ {
		keys = append(keys, s.prefix+start.AddDate(0, 0, -i).Format(DayLayout))
	}
	return s.client.Del(ctx, keys...).Err()
}

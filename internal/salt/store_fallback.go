package salt

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrProvisional marks a salt that is usable but not the shared one: the
// shared store was unreachable and a local one answered. A Ring hashes with
// it (no hit is lost) and loads again on its next Rotate.
var ErrProvisional = errors.New("salt: provisional salt from the fallback store")

// FallbackStore asks Primary (the store instances share, Redis) and, when it
// fails, Fallback (this instance's own, the salts collection), so the app
// starts and hashes hits during a Redis outage. Visitors hashed meanwhile
// may get other ids on other instances until Primary answers again.
type FallbackStore struct {
	Primary  Store
	Fallback Store

	// Timeout bounds one Primary call (default 2s).
	Timeout time.Duration
}

// Salt implements Store. A salt from Fallback comes with ErrProvisional.
func (f FallbackStore) Salt(ctx context.Context, day string, fresh []byte) ([]byte, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	s, err := f.Primary.Salt(pctx, day, fresh)
	cancel()
	if err == nil {
		return s, nil
	}
	local, ferr := f.Fallback.Salt(ctx, day, fresh)
	if ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	return local, fmt.Errorf("%w (shared store: %v)", ErrProvisional, err)
}

// Prune implements Store: both stores drop old salts. A Primary failure is
// returned, so the Ring prunes again on its next Rotate.
func (f FallbackStore) Prune(ctx context.Context, before string) error {
	return errors.Join(f.Fallback.Prune(ctx, before), f.Primary.Prune(ctx, before))
}

package realtime

import (
	"sync"
	"sync/atomic"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// safeClient is PocketBase's default realtime client with a Send that never
// races with Discard. The default client closes its channel on Discard while
// a Send may be blocked on it, and recovers from the resulting panic; with a
// long-lived sender goroutine per client that race is common (and the race
// detector reports it). Here Discard first releases blocked senders, then
// closes the channel once none is left, so the connection loop still ends
// when a client is discarded.
type safeClient struct {
	*subscriptions.DefaultClient // id, subscriptions and store

	ch        chan subscriptions.Message
	gone      chan struct{}
	mu        sync.RWMutex // Send holds it shared, the channel close exclusively
	discarded atomic.Bool
}

var _ subscriptions.Client = (*safeClient)(nil)

func newSafeClient(c *subscriptions.DefaultClient) *safeClient {
	return &safeClient{DefaultClient: c, ch: make(chan subscriptions.Message), gone: make(chan struct{})}
}

// Channel implements subscriptions.Client.
func (c *safeClient) Channel() chan subscriptions.Message { return c.ch }

// Send implements subscriptions.Client: it blocks until the connection takes
// the message or the client is discarded.
func (c *safeClient) Send(m subscriptions.Message) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.discarded.Load() {
		return
	}
	select {
	case c.ch <- m:
	case <-c.gone:
	}
}

// Discard implements subscriptions.Client.
func (c *safeClient) Discard() {
	if c.discarded.Swap(true) {
		return
	}
	close(c.gone)
	c.mu.Lock()
	close(c.ch)
	c.mu.Unlock()
	c.DefaultClient.Discard()
}

// IsDiscarded implements subscriptions.Client.
func (c *safeClient) IsDiscarded() bool { return c.discarded.Load() }

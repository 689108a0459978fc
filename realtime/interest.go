package realtime

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/pocketlytics/pocketlytics/realtime/bus"
)

// With Redis every instance receives every live message, so an instance
// cannot tell from its own subscribers whether a message has a reader. It
// would build and publish a message per hit for every site, although most
// sites have no dashboard open anywhere. Instead the instances tell each
// other which sites they watch, over the same channel:
//
//   - an instance announces the sites of a subscription before the
//     subscription request is answered, so a dashboard gets the messages of
//     hits sent after it subscribed, whichever instance takes them;
//   - every watchHeartbeat it announces all the sites it watches, and an
//     announcement holds for watchTTL, so a lost message or a restarted
//     instance costs at most that long;
//   - an instance that starts asks the others to announce at once (hello).
//
// Control messages travel under controlSite, which no site id can be:
// instances of an older version take them for a site nobody watches.

const (
	controlSite    = "*"
	watchHeartbeat = 5 * time.Second
	watchTTL       = 3 * watchHeartbeat

	// watchChunk bounds the sites of one announcement.
	watchChunk = 1000
)

// control is the body of a control message.
type control struct {
	Watch []string `json:"watch,omitempty"` // sites watched by the sender
	Hello bool     `json:"hello,omitempty"` // the sender started: announce now
}

// interest holds the sites watched on other instances, until when.
type interest struct {
	mu    sync.RWMutex
	until map[string]time.Time
	poke  chan struct{} // a hello arrived: announce now
}

func newInterest() *interest {
	return &interest{until: map[string]time.Time{}, poke: make(chan struct{}, 1)}
}

// watched reports whether another instance announced site recently enough.
func (in *interest) watched(site string, now time.Time) bool {
	in.mu.RLock()
	until, ok := in.until[site]
	in.mu.RUnlock()
	return ok && now.Before(until)
}

// receive applies a control message.
func (in *interest) receive(data []byte, now time.Time) {
	var c control
	if json.Unmarshal(data, &c) != nil {
		return
	}
	if len(c.Watch) > 0 {
		until := now.Add(watchTTL)
		in.mu.Lock()
		for _, site := range c.Watch {
			if site != "" && len(site) <= 64 { // ids are 15 characters: skip junk
				in.until[site] = until
			}
		}
		in.mu.Unlock()
	}
	if c.Hello {
		select {
		case in.poke <- struct{}{}:
		default:
		}
	}
}

// prune forgets announcements that ran out.
func (in *interest) prune(now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for site, until := range in.until {
		if !now.Before(until) {
			delete(in.until, site)
		}
	}
}

// controlMessages frames an announcement of sites (and a hello), at most
// watchChunk sites a message.
func controlMessages(sites []string, hello bool) []bus.Message {
	var msgs []bus.Message
	for len(sites) > 0 || hello {
		n := min(len(sites), watchChunk)
		data, _ := json.Marshal(control{Watch: sites[:n], Hello: hello})
		msgs = append(msgs, bus.Message{Site: controlSite, Data: data})
		sites, hello = sites[n:], false
	}
	return msgs
}

// announceWatch tells the other instances that this one watches sites. It waits
// for Redis at most a second: the heartbeat repeats it anyway.
func (l *Live) announceWatch(sites []string, hello bool) {
	if l.cfg.Redis == nil || (len(sites) == 0 && !hello) {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, time.Second)
	defer cancel()
	if err := l.bus.Publish(ctx, controlMessages(sites, hello)...); err != nil && l.ctx.Err() == nil {
		l.warn("live: announcing watched sites failed", err)
	}
}

// heartbeat announces the watched sites every watchHeartbeat and when
// another instance starts, and forgets stale announcements of others.
func (l *Live) heartbeat() {
	defer l.wg.Done()
	tick := time.NewTicker(watchHeartbeat)
	defer tick.Stop()

	select { // ask the others once the bus delivers
	case <-l.ready:
		l.announceWatch(l.bridge.watchedSites(), true)
	case <-l.ctx.Done():
		return
	}
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
			l.interest.prune(time.Now())
		case <-l.interest.poke:
		}
		l.announceWatch(l.bridge.watchedSites(), false)
	}
}

// watchedSites lists the sites this instance's clients watch, sorted.
func (b *bridge) watchedSites() []string {
	b.mu.RLock()
	out := make([]string, 0, len(b.sites))
	for site := range b.sites {
		out = append(out, site)
	}
	b.mu.RUnlock()
	slices.Sort(out)
	return out
}

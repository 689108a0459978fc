package realtime

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"
	"github.com/pocketlytics/pocketlytics/internal/metrics"
	"github.com/pocketlytics/pocketlytics/realtime/bus"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// TopicPrefix starts every live topic: "analytics/live/{siteId}". The JS
// SDK may add "?options=..." to a topic; messages are sent under the exact
// key the client subscribed with, as PocketBase does.
const TopicPrefix = "analytics/live/"

// SitesCollection is the id of the collection whose view rule guards live
// topics.
const SitesCollection = migrations.SitesCollectionId

// Topic returns the live topic of a site.
func Topic(siteID string) string { return TopicPrefix + siteID }

// parseTopic tells whether a subscription key is a live topic and, if it
// names a site, which one.
func parseTopic(sub string) (site string, live bool) {
	base, _, _ := strings.Cut(sub, "?")
	site, live = strings.CutPrefix(base, TopicPrefix)
	if !live || site == "" || strings.ContainsAny(site, "/\n") {
		return "", live
	}
	return site, true
}

// countRefresh is how often the live count of a watched site is re-read when
// no message changed it, so that expiries show up.
const countRefresh = time.Second

// bridge connects live messages to PocketBase realtime clients. It keeps an
// index site → subscribers, maintained on subscribe, unsubscribe and
// disconnect, and checks it before any work for a site.
type bridge struct {
	app   core.App
	live  *Live
	goals *goalCache

	connsMu sync.Mutex
	conns   map[string]int // open realtime connections by client address

	mu       sync.RWMutex
	clients  map[string]*subscriber // by client id
	sites    map[string]*siteEntry
	counting bool // the count loop is running
	closed   bool
}

type siteEntry struct {
	subs    map[*subscriber]struct{}
	dirty   atomic.Bool // a message may have changed the count
	last    int         // count last pushed; -1: push the next one whatever it is
	checked time.Time
}

func newBridge(app core.App, live *Live) *bridge {
	return &bridge{app: app, live: live, goals: newGoalCache(app), conns: map[string]int{}, clients: map[string]*subscriber{}, sites: map[string]*siteEntry{}}
}

func (b *bridge) bind() {
	b.goals.bind()
	b.app.OnRealtimeConnectRequest().BindFunc(func(e *core.RealtimeConnectRequestEvent) error {
		addr := e.RealIP()
		if !b.connect(addr) {
			return e.TooManyRequestsError("Too many realtime connections from this address.", nil)
		}
		defer b.disconnect(addr)
		if c, ok := e.Client.(*subscriptions.DefaultClient); ok {
			e.Client = newSafeClient(c)
		}
		err := e.Next()
		b.set(e.Client, nil) // the connection is over
		return err
	})

	b.app.OnRealtimeSubscribeRequest().BindFunc(b.onSubscribe)

	b.app.OnRealtimeMessageSend().BindFunc(func(e *core.RealtimeMessageEvent) error {
		if e.Message == nil || e.Message.Name != batchName {
			return e.Next()
		}
		if _, err := e.Response.Write(e.Message.Data); err != nil {
			return err
		}
		return e.Flush()
	})

	// Access can change after subscribing: re-check and unsubscribe those
	// who lost it. These hooks run after the change was committed.
	recheckSite := func(e *core.RecordEvent) error {
		id := e.Record.Id
		b.recheck(func(site string, _ *subscriber) bool { return site == id }, nil)
		return e.Next()
	}
	b.app.OnRecordAfterUpdateSuccess(SitesCollection).BindFunc(recheckSite)
	b.app.OnRecordAfterDeleteSuccess(SitesCollection).BindFunc(recheckSite)
	// A share changed (password, live flag) or deleted: its viewers lose
	// access at once.
	recheckShare := func(e *core.RecordEvent) error {
		b.recheckSite(e.Record.GetString("site"))
		return e.Next()
	}
	b.app.OnRecordAfterUpdateSuccess(access.SharesCollection).BindFunc(recheckShare)
	b.app.OnRecordAfterDeleteSuccess(access.SharesCollection).BindFunc(recheckShare)
	b.app.OnCollectionAfterUpdateSuccess(SitesCollection).BindFunc(func(e *core.CollectionEvent) error {
		b.recheck(func(string, *subscriber) bool { return true }, nil)
		return e.Next()
	})
	b.app.OnRecordAfterDeleteSuccess().BindFunc(func(e *core.RecordEvent) error {
		if e.Record.Collection().IsAuth() {
			deleted := e.Record
			b.recheck(func(_ string, s *subscriber) bool { return sameAuth(authOf(s.client), deleted) },
				func(*subscriber) *core.Record { return nil })
		}
		return e.Next()
	})
}

// connect counts a realtime connection from addr, or reports false when
// addr holds Config.MaxConnsPerAddr already.
func (b *bridge) connect(addr string) bool {
	max := b.live.cfg.MaxConnsPerAddr
	if max < 0 {
		return true
	}
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	if b.conns[addr] >= max {
		return false
	}
	b.conns[addr]++
	return true
}

func (b *bridge) disconnect(addr string) {
	if b.live.cfg.MaxConnsPerAddr < 0 {
		return
	}
	b.connsMu.Lock()
	defer b.connsMu.Unlock()
	if b.conns[addr]--; b.conns[addr] <= 0 {
		delete(b.conns, addr)
	}
}

// liveKeys picks the live keys a client may hold from those it asked for:
// one per site, the last one given (the SDK lists its newest subscription
// last), for at most max sites. Keys of a topic without a site id are
// dropped too.
func liveKeys(subs []string, max int) []string {
	last := map[string]string{}
	var order []string
	for _, sub := range subs {
		site, _ := parseTopic(sub)
		if site == "" {
			continue
		}
		if _, seen := last[site]; !seen {
			if len(order) == max {
				continue
			}
			order = append(order, site)
		}
		last[site] = sub
	}
	keys := make([]string, len(order))
	for i, site := range order {
		keys[i] = last[site]
	}
	return keys
}

// onSubscribe drops the live topics the client may not see, and all but
// one key per site, before PocketBase applies the subscriptions, then
// indexes the rest.
func (b *bridge) onSubscribe(e *core.RealtimeSubscribeRequestEvent) error {
	kept := make([]string, 0, len(e.Subscriptions))
	var live []string
	for _, sub := range e.Subscriptions {
		if _, ours := parseTopic(sub); ours {
			live = append(live, sub)
		} else {
			kept = append(kept, sub)
		}
	}
	live = liveKeys(live, b.live.cfg.MaxSites)
	if len(live) > 0 && !b.live.cfg.DisablePush {
		opts := parseOptions(live)
		for _, sub := range live {
			if site, _ := parseTopic(sub); site != "" && canView(e.App, site, e.Auth, opts[sub]) {
				kept = append(kept, sub)
			}
		}
	}
	e.Subscriptions = kept

	if err := e.Next(); err != nil {
		return err
	}
	b.expireShares(e.Client)
	topics := topicsOf(e.Client)
	b.set(e.Client, topics)
	// Before the answer: hits sent after it must find the site watched on
	// every instance.
	b.live.announceWatch(slices.Sorted(maps.Keys(topics)), false)
	return nil
}

func (b *bridge) recheckSite(id string) {
	b.recheck(func(site string, _ *subscriber) bool { return site == id }, nil)
}

// expireShares rechecks, when it expires, each share the client's live
// subscriptions were admitted by.
func (b *bridge) expireShares(c subscriptions.Client) {
	for key, opts := range c.Subscriptions(TopicPrefix) {
		token := opts.Query[access.ShareParam]
		if token == "" {
			continue
		}
		share, err := access.FindShare(b.app, token)
		if err != nil {
			continue
		}
		if exp := share.GetDateTime("expires"); !exp.IsZero() {
			site, _ := parseTopic(key)
			time.AfterFunc(time.Until(exp.Time()), func() { b.recheckSite(site) })
		}
	}
}

// parseOptions reads the "?options=" of subscription keys exactly as
// PocketBase's client does.
func parseOptions(subs []string) map[string]subscriptions.SubscriptionOptions {
	tmp := subscriptions.NewDefaultClient()
	tmp.Subscribe(subs...)
	return tmp.Subscriptions()
}

// canView reports whether auth may see the site's live data (see CanView).
func canView(app core.App, site string, auth *core.Record, opts subscriptions.SubscriptionOptions) bool {
	record, err := app.FindRecordById(SitesCollection, site)
	if err != nil {
		return false
	}
	info := &core.RequestInfo{
		Context: core.RequestInfoContextRealtime,
		Method:  http.MethodGet,
		Query:   opts.Query,
		Headers: opts.Headers,
		Body:    map[string]any{},
		Auth:    auth,
	}
	if info.Query == nil {
		info.Query = map[string]string{}
	}
	if info.Headers == nil {
		info.Headers = map[string]string{}
	}
	return CanView(app, record, info)
}

// PublicField is the sites field that opens a site's statistics to anyone.
const PublicField = "public"

// CanView reports whether a request may see a site's live data. As for the
// analytics API, anyone may watch a public site, and anyone with a share
// link of the site whose live flag is on (access.ShareOpens); these open
// the statistics, not the record itself (its domains, owner and members
// stay behind the view rule). Any other site is visible to those the sites
// collection's view rule admits: owner, admins, members and superusers. API keys
// never open live topics.
func CanView(app core.App, site *core.Record, info *core.RequestInfo) bool {
	if site.GetBool(PublicField) || access.ShareOpens(app, site.Id, info.Query, true) {
		return true
	}
	ok, err := app.CanAccessRecord(site, info, site.Collection().ViewRule)
	return err == nil && ok
}

func authOf(c subscriptions.Client) *core.Record {
	r, _ := c.Get(apis.RealtimeClientAuthKey).(*core.Record)
	return r
}

func sameAuth(a, b *core.Record) bool {
	return a != nil && b != nil && a.Id == b.Id && a.Collection().Id == b.Collection().Id
}

// topicsOf returns the client's live subscriptions: site → keys.
func topicsOf(c subscriptions.Client) map[string][]string {
	out := map[string][]string{}
	for key := range c.Subscriptions(TopicPrefix) {
		if site, _ := parseTopic(key); site != "" {
			out[site] = append(out[site], key)
		}
	}
	for _, keys := range out {
		slices.Sort(keys)
	}
	return out
}

// set makes the index hold exactly topics for the client (nil: remove it).
func (b *bridge) set(client subscriptions.Client, topics map[string][]string) {
	b.mu.Lock()
	defer b.mu.Unlock()

	if b.closed || client.IsDiscarded() {
		topics = nil
	}
	id := client.Id()
	s := b.clients[id]
	if s == nil {
		if len(topics) == 0 {
			return
		}
		s = newSubscriber(client, b.live.cfg.ClientBuffer)
		b.clients[id] = s
		metrics.LiveClients.Inc()
		go s.run()
	}

	for site := range s.topics {
		if _, ok := topics[site]; ok {
			continue
		}
		e := b.sites[site]
		if e == nil {
			continue
		}
		delete(e.subs, s)
		if len(e.subs) == 0 {
			delete(b.sites, site)
		}
	}
	for site, keys := range topics {
		e := b.sites[site]
		if e == nil {
			e = &siteEntry{subs: map[*subscriber]struct{}{}}
			b.sites[site] = e
		}
		e.subs[s] = struct{}{}
		if !slices.Equal(s.topics[site], keys) {
			e.last = -1 // a new key gets the current count at once
		}
	}
	s.topics = topics

	if len(topics) == 0 {
		delete(b.clients, id)
		metrics.LiveClients.Dec()
		s.stop()
	}
	if len(b.sites) > 0 && !b.counting {
		b.counting = true
		go b.countLoop()
	}
}

// recheck re-evaluates the view rule for the subscriptions match selects and
// unsubscribes the forbidden ones. auth overrides the client's auth state.
// It reads through the app itself, never a finished transaction's.
func (b *bridge) recheck(match func(site string, s *subscriber) bool, auth func(*subscriber) *core.Record) {
	type check struct {
		s    *subscriber
		site string
		keys []string
	}
	var checks []check
	b.mu.RLock()
	for site, e := range b.sites {
		for s := range e.subs {
			if match(site, s) {
				checks = append(checks, check{s, site, s.topics[site]})
			}
		}
	}
	b.mu.RUnlock()

	changed := map[*subscriber][]string{}
	for _, c := range checks {
		a := authOf(c.s.client)
		if auth != nil {
			a = auth(c.s)
		}
		opts := c.s.client.Subscriptions()
		for _, key := range c.keys {
			if !canView(b.app, c.site, a, opts[key]) {
				c.s.client.Unsubscribe(key)
				changed[c.s] = append(changed[c.s], key)
			}
		}
	}
	for s, keys := range changed {
		s.purge(keys)
		b.set(s.client, topicsOf(s.client))
	}
}

// dispatch forwards a bus message to this instance's subscribers of its
// site, followed by the conversions it makes on the site's goals. It never
// blocks: each subscriber has its own buffer and sender.
func (b *bridge) dispatch(m bus.Message) {
	if !b.watching(m.Site) {
		return
	}
	convs := b.goals.conversions(m.Site, m.Data)
	b.mu.RLock()
	defer b.mu.RUnlock()
	e := b.sites[m.Site]
	if e == nil {
		return
	}
	for s := range e.subs {
		for _, key := range s.topics[m.Site] {
			s.push(subscriptions.Message{Name: key, Data: m.Data})
			for _, c := range convs {
				s.push(subscriptions.Message{Name: key, Data: c})
			}
		}
	}
	if changesCount(m.Data) {
		e.dirty.Store(true)
	}
}

// watching reports whether any client of this instance watches site.
func (b *bridge) watching(site string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.sites[site]
	return ok
}

// countLoop pushes count changes of watched sites, at most one per site per
// CountThrottle. It runs only while some site is watched.
func (b *bridge) countLoop() {
	ctx := b.live.ctx
	t := time.NewTicker(b.live.cfg.CountThrottle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			b.counting = false
			b.mu.Unlock()
			return
		case <-t.C:
		}

		now := time.Now()
		var due []string
		b.mu.Lock()
		if len(b.sites) == 0 {
			b.counting = false
			b.mu.Unlock()
			return
		}
		for site, e := range b.sites {
			if e.dirty.Swap(false) || e.last < 0 || now.Sub(e.checked) >= countRefresh {
				e.checked = now
				due = append(due, site)
			}
		}
		b.mu.Unlock()
		if len(due) == 0 {
			continue
		}

		pruned, err := b.live.store.Prune(ctx, due...)
		if err != nil {
			b.live.warn("live: reading live counts failed", err)
			continue
		}
		b.mu.Lock()
		for _, p := range pruned {
			e := b.sites[p.Site]
			if e == nil || e.last == p.Count {
				continue
			}
			e.last = p.Count
			data, _ := jsonCount(p.Site, p.Count, now)
			for s := range e.subs {
				for _, key := range s.topics[p.Site] {
					s.pushCount(subscriptions.Message{Name: key, Data: data})
				}
			}
		}
		b.mu.Unlock()
		b.live.announce(pruned) // outside the lock: a local bus dispatches right away
	}
}

func jsonCount(site string, n int, at time.Time) ([]byte, error) {
	return json.Marshal(CountMessage{Type: TypeCount, Site: site, Time: at.UTC(), Visitors: n})
}

// close drops every subscriber; later subscriptions are not indexed.
func (b *bridge) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for id, s := range b.clients {
		s.stop()
		delete(b.clients, id)
		metrics.LiveClients.Dec()
	}
	clear(b.sites)
}

// subscriber is one realtime client with live topics. Messages wait in a
// bounded ring; one goroutine hands them to the client's channel, which
// blocks while the connection is busy, so a slow client only delays itself.
type subscriber struct {
	client subscriptions.Client
	topics map[string][]string // site → keys; guarded by bridge.mu

	mu      sync.Mutex
	ring    []subscriptions.Message // grows up to max
	max     int
	head, n int
	counts  map[string]subscriptions.Message // latest unsent count per key
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

func newSubscriber(c subscriptions.Client, size int) *subscriber {
	return &subscriber{
		client: c,
		ring:   make([]subscriptions.Message, min(size, 64)),
		max:    size,
		counts: map[string]subscriptions.Message{},
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// push queues a message, dropping the oldest when the client is too far behind.
func (s *subscriber) push(m subscriptions.Message) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	if s.n == len(s.ring) {
		if len(s.ring) < s.max {
			s.grow()
		} else {
			s.ring[s.head] = subscriptions.Message{}
			s.head = (s.head + 1) % len(s.ring)
			s.n--
			metrics.LiveDropped.Inc()
		}
	}
	s.ring[(s.head+s.n)%len(s.ring)] = m
	s.n++
	s.mu.Unlock()
	s.signal()
}

// grow doubles the ring (up to max), keeping the order.
func (s *subscriber) grow() {
	ring := make([]subscriptions.Message, min(2*len(s.ring), s.max))
	for i := 0; i < s.n; i++ {
		ring[i] = s.ring[(s.head+i)%len(s.ring)]
	}
	s.ring, s.head = ring, 0
}

// pushCount replaces any unsent count of the same key.
func (s *subscriber) pushCount(m subscriptions.Message) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	if _, ok := s.counts[m.Name]; ok {
		metrics.LiveDropped.Inc()
	}
	s.counts[m.Name] = m
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// purge drops queued messages of keys the client no longer holds.
func (s *subscriber) purge(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.counts, k)
	}
	kept := 0
	for i := 0; i < s.n; i++ {
		m := s.ring[(s.head+i)%len(s.ring)]
		if !slices.Contains(keys, m.Name) {
			s.ring[(s.head+kept)%len(s.ring)] = m
			kept++
		}
	}
	for i := kept; i < s.n; i++ {
		s.ring[(s.head+i)%len(s.ring)] = subscriptions.Message{}
	}
	s.n = kept
}

func (s *subscriber) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	clear(s.counts)
	clear(s.ring)
	s.n = 0
	close(s.done)
}

func (s *subscriber) run() {
	var buf []subscriptions.Message
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		for {
			buf = s.popBatch(buf[:0])
			switch len(buf) {
			case 0:
			case 1:
				s.client.Send(buf[0]) // blocks until the connection takes it
			default:
				s.client.Send(subscriptions.Message{Name: batchName, Data: renderBatch(s.client.Id(), buf)})
			}
			if len(buf) == 0 || s.client.IsDiscarded() {
				break
			}
		}
		if s.client.IsDiscarded() {
			return
		}
	}
}

// batchName marks a message that carries several rendered SSE events; the
// OnRealtimeMessageSend hook bound by the bridge writes them with a single
// flush. A client that fell behind thus catches up with one write instead
// of one per message.
const batchName = "\x00pocketlytics-live-batch"

// Batch bounds: messages and rendered bytes per write.
const (
	maxBatchMessages = 64
	maxBatchBytes    = 64 << 10
)

// popBatch appends the next messages to buf: counts first (they are the
// latest state), then the ring in order, within the batch bounds.
func (s *subscriber) popBatch(buf []subscriptions.Message) []subscriptions.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return buf
	}
	size := 0
	for k, m := range s.counts {
		delete(s.counts, k)
		buf = append(buf, m)
		size += len(m.Data)
	}
	for s.n > 0 && len(buf) < maxBatchMessages && size < maxBatchBytes {
		m := s.ring[s.head]
		s.ring[s.head] = subscriptions.Message{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
		buf = append(buf, m)
		size += len(m.Data)
	}
	return buf
}

// renderBatch renders messages as PocketBase's Message.WriteSSE does.
func renderBatch(clientID string, msgs []subscriptions.Message) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		m.WriteSSE(&b, clientID)
	}
	return b.Bytes()
}

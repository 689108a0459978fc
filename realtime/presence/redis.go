package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the Store shared by several instances. Per site it keeps (all
// keys carry the site in a hash tag and expire a little after the window):
//
//	{prefix}:{site}:seen         sorted set visitor → expiry (ms)
//	{prefix}:{site}:left         sorted set visitor → time of a pending leave (ms)
//	{prefix}:{site}:page         hash visitor → current page
//	{prefix}:{site}:ref          hash visitor → referrer host
//	{prefix}:{site}:arr          list of recent arrivals (JSON), newest first
//	{prefix}:{site}:online:DAY   hash minute of the UTC day → sampled count (48h)
//	{prefix}:sites               sorted set site → active until (ms), for sampling
//	{prefix}:sample:MINUTE       lock: which instance samples that minute
//
// Every change runs in a Lua script, so concurrent instances never see half
// an update and each removal is reported by exactly one of them.
type Redis struct {
	rdb  *redis.Client
	opts Options

	mu         sync.Mutex
	registered map[string]int64 // site → when this process last refreshed {prefix}:sites (ms)
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on client. It does no I/O, so it works whether
// or not Redis answers yet: scripts are loaded by the first call that finds
// them missing, and every call fails while Redis is down and works again
// once it is back.
func NewRedis(client *redis.Client, opts Options) *Redis {
	return &Redis{rdb: client, opts: opts.withDefaults(), registered: map[string]int64{}}
}

func (r *Redis) key(site, name string) string {
	return r.opts.Prefix + ":{" + site + "}:" + name
}

func (r *Redis) siteKeys(site string) []string {
	return []string{r.key(site, "seen"), r.key(site, "left"), r.key(site, "page"), r.key(site, "ref"), r.key(site, "arr")}
}

// ttl keeps a site's keys a minute past the longest any entry can matter.
func (r *Redis) ttl() int64 {
	return (r.opts.Window + r.opts.Grace + time.Minute).Milliseconds()
}

// touchScript applies the hits of one site in order. KEYS: seen, left,
// page, ref, arr. ARGV: window, grace, now, ttl, arrivals cap, then six per
// hit: visitor, at, kind (p|a|l), page, referrer, arrival JSON. Returns three
// values per hit: arrived (0|1), previous page, state (1 = leaving, 2 = stale).
//
// It reads the state of all the call's visitors at once, applies the hits to
// that copy with the rules of the per-hit commands (ZADD GT for the expiry,
// XX LT for a leave's, GT for the leave time) and writes back what changed,
// so a call costs about fifteen commands whatever its size. A key's TTL is
// refreshed once, as the per-hit version left it: all keys after any
// accepted hit, the left key alone after leaves only.
var touchScript = redis.NewScript(`
local window, grace, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, cap = ARGV[4], tonumber(ARGV[5])
local n = (#ARGV - 5) / 6
local vs, idx = {}, {}
for i = 0, n - 1 do
  local vk = ARGV[6 + i * 6]
  if not idx[vk] then vs[#vs + 1] = vk; idx[vk] = #vs end
end
local seen = redis.call('ZMSCORE', KEYS[1], unpack(vs))
local left = redis.call('ZMSCORE', KEYS[2], unpack(vs))
local page = redis.call('HMGET', KEYS[3], unpack(vs))
for j = 1, #vs do
  seen[j] = seen[j] and tonumber(seen[j])
  left[j] = left[j] and tonumber(left[j])
end
local ds, dl, dp, ref, arr, out = {}, {}, {}, {}, {}, {}
local touched, leaving = false, false
for i = 0, n - 1 do
  local b = 6 + i * 6
  local j, at, kind = idx[ARGV[b]], tonumber(ARGV[b + 1]), ARGV[b + 2]
  local s, l = seen[j], left[j]
  local arrived, prev, state = 0, '', 0
  if kind == 'l' then
    if s and s > now and s <= at + window then
      seen[j] = math.min(s, at + grace); ds[j] = true
      if (not l) or at > l then left[j] = at; dl[j] = true end
      leaving, state = true, 1
    end
  elseif l and at <= l then
    state = 2
  else
    if l then left[j] = false; dl[j] = true end
    seen[j] = s and math.max(s, at + window) or at + window; ds[j] = true
    if (not s) or s <= now then
      arrived = 1
      page[j] = ARGV[b + 3]; dp[j] = true
      ref[j] = ARGV[b + 4]
      arr[#arr + 1] = ARGV[b + 5]
    else
      prev = page[j] or ''
      if kind == 'p' then page[j] = ARGV[b + 3]; dp[j] = true end
    end
    touched = true
  end
  out[#out + 1] = arrived; out[#out + 1] = prev; out[#out + 1] = state
end
local zs, zl, zr, hp, hr, hd = {}, {}, {}, {}, {}, {}
for j, vk in ipairs(vs) do
  if ds[j] then zs[#zs + 1] = seen[j]; zs[#zs + 1] = vk end
  if dl[j] then
    if left[j] then zl[#zl + 1] = left[j]; zl[#zl + 1] = vk else zr[#zr + 1] = vk end
  end
  if dp[j] then hp[#hp + 1] = vk; hp[#hp + 1] = page[j] end
  if ref[j] == '' then hd[#hd + 1] = vk elseif ref[j] then hr[#hr + 1] = vk; hr[#hr + 1] = ref[j] end
end
if #zs > 0 then redis.call('ZADD', KEYS[1], unpack(zs)) end
if #zl > 0 then redis.call('ZADD', KEYS[2], unpack(zl)) end
if #zr > 0 then redis.call('ZREM', KEYS[2], unpack(zr)) end
if #hp > 0 then redis.call('HSET', KEYS[3], unpack(hp)) end
if #hr > 0 then redis.call('HSET', KEYS[4], unpack(hr)) end
if #hd > 0 then redis.call('HDEL', KEYS[4], unpack(hd)) end
if #arr > 0 then
  redis.call('LPUSH', KEYS[5], unpack(arr, math.max(1, #arr - cap + 1)))
  redis.call('LTRIM', KEYS[5], 0, cap - 1)
end
if touched then
  for k = 1, 5 do redis.call('PEXPIRE', KEYS[k], ttl) end
elseif leaving then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return out
`)

// maxCallHits bounds the hits of one touchScript call (the departures of
// one settleScript call), which keeps a call's arguments within Lua's stack
// and its run short: Redis does nothing else while a script runs.
const maxCallHits = 500

// settleScript removes the visitors of one site whose leave is still
// pending. KEYS: seen, left, page, ref. ARGV: three per departure: visitor,
// leave time, deadline. Returns 1 per departure it removed, else 0.
var settleScript = redis.NewScript(`
local n = #ARGV / 3
local vs = {}
for i = 1, n do vs[i] = ARGV[3 * i - 2] end
local left = redis.call('ZMSCORE', KEYS[2], unpack(vs))
local seen = redis.call('ZMSCORE', KEYS[1], unpack(vs))
local out, gone, done = {}, {}, {}
for i = 1, n do
  local vk, l, s = vs[i], left[i], seen[i]
  out[i] = 0
  if (not done[vk]) and l and tonumber(l) == tonumber(ARGV[3 * i - 1])
      and not (s and tonumber(s) > tonumber(ARGV[3 * i])) then
    done[vk] = true
    gone[#gone + 1] = vk
    out[i] = 1
  end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[3], unpack(gone))
  redis.call('HDEL', KEYS[4], unpack(gone))
end
return out
`)

// pruneScript removes expired visitors. KEYS: seen, left, page, ref.
// ARGV: now, cutoff for old leave records. Returns {count, expired, left}.
var pruneScript = redis.NewScript(`
local expired, left = {}, {}
while true do
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
  if #old == 0 then break end
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('HDEL', KEYS[4], unpack(old))
  for _, vk in ipairs(old) do
    if redis.call('ZREM', KEYS[2], vk) == 1 then left[#left + 1] = vk else expired[#expired + 1] = vk end
  end
  if #old < 500 then break end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
return {redis.call('ZCARD', KEYS[1]), expired, left}
`)

var scripts = []*redis.Script{touchScript, settleScript, pruneScript}

func (r *Redis) load(ctx context.Context) error {
	for _, s := range scripts {
		if err := s.Load(ctx, r.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// pipelined runs fn in a pipeline, reloading the scripts once if Redis lost
// them (restart, SCRIPT FLUSH). A NOSCRIPT error means no script ran.
func (r *Redis) pipelined(ctx context.Context, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	fn := func(p redis.Pipeliner) error { fill(p); return nil }
	cmds, err := r.rdb.Pipelined(ctx, fn)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := r.load(ctx); err != nil {
			return nil, fmt.Errorf("load scripts: %w", err)
		}
		cmds, err = r.rdb.Pipelined(ctx, fn)
	}
	return cmds, err
}

// Touch implements Store. It makes one script call per site (per
// maxCallHits of it): a site's keys share a hash tag, so each call stays on
// one cluster slot, and hits of different sites never touch the same key.
func (r *Redis) Touch(ctx context.Context, hits []Sighting) ([]Result, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	now := ms(r.opts.Now())
	register := r.sitesToRegister(hits, now)

	calls := bySite(len(hits), func(i int) string { return hits[i].Site })
	args := make([][]any, len(calls))
	for k, c := range calls {
		args[k] = r.touchArgs(hits, c, now)
	}
	cmds, err := r.pipelined(ctx, func(p redis.Pipeliner) {
		for k, c := range calls {
			touchScript.EvalSha(ctx, p, r.siteKeys(hits[c[0]].Site), args[k]...)
		}
		until := float64(now + r.ttl())
		for _, site := range register {
			p.ZAddGT(ctx, r.opts.Prefix+":sites", redis.Z{Score: until, Member: site})
		}
	})
	if err != nil {
		r.forget(register)
		return nil, fmt.Errorf("presence: touch: %w", err)
	}

	out := make([]Result, len(hits))
	for k, c := range calls {
		v, err := cmds[k].(*redis.Cmd).Slice()
		if err != nil || len(v) != 3*len(c) {
			return nil, fmt.Errorf("presence: touch: unexpected reply %v (%v)", v, err)
		}
		for n, i := range c {
			arrived, _ := v[3*n].(int64)
			prev, _ := v[3*n+1].(string)
			state, _ := v[3*n+2].(int64)
			out[i] = Result{Arrived: arrived == 1, PrevPage: prev, Leaving: state == 1, Stale: state == 2}
		}
	}
	return out, nil
}

// bySite groups the indexes 0..n-1 by site(i), keeping their order within
// a site, in groups of at most maxCallHits: one script call each.
func bySite(n int, site func(i int) string) [][]int {
	var (
		calls [][]int
		open  = map[string]int{} // site → its call still taking indexes
	)
	for i := range n {
		k, ok := open[site(i)]
		if !ok || len(calls[k]) == maxCallHits {
			k = len(calls)
			open[site(i)] = k
			calls = append(calls, nil)
		}
		calls[k] = append(calls[k], i)
	}
	return calls
}

// touchArgs are touchScript's arguments for the hits of one call.
func (r *Redis) touchArgs(hits []Sighting, call []int, now int64) []any {
	args := make([]any, 0, 5+6*len(call))
	args = append(args, r.opts.Window.Milliseconds(), r.opts.Grace.Milliseconds(), now, r.ttl(), r.opts.Arrivals)
	arrivals := make([]byte, 0, 256*len(call)) // one buffer for the call's arrivals
	for _, i := range call {
		h := &hits[i]
		kind, arrival := "a", []byte(nil)
		switch h.Kind {
		case Pageview:
			kind = "p"
		case Leave:
			kind = "l"
		}
		if h.Kind != Leave {
			start := len(arrivals)
			arrivals = h.Arrival.appendJSON(arrivals)
			arrival = arrivals[start:len(arrivals):len(arrivals)]
		}
		args = append(args, h.Visitor, ms(h.At), kind, h.Page, h.Referrer, arrival)
	}
	return args
}

// sitesToRegister returns the sites of hits whose {prefix}:sites entry this
// process has not refreshed for a while, and marks them refreshed.
func (r *Redis) sitesToRegister(hits []Sighting, now int64) []string {
	const every = 10 * 1000 // ms
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, h := range hits {
		if now-r.registered[h.Site] < every {
			continue
		}
		r.registered[h.Site] = now
		out = append(out, h.Site)
	}
	if len(r.registered) > 100_000 { // bound the cache; entries are cheap to redo
		clear(r.registered)
	}
	return out
}

func (r *Redis) forget(sites []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range sites {
		delete(r.registered, s)
	}
}

// Settle implements Store, with one script call per site.
func (r *Redis) Settle(ctx context.Context, deps []Departure) ([]bool, error) {
	if len(deps) == 0 {
		return nil, nil
	}
	now := ms(r.opts.Now())
	grace := r.opts.Grace.Milliseconds()
	calls := bySite(len(deps), func(i int) string { return deps[i].Site })
	cmds, err := r.pipelined(ctx, func(p redis.Pipeliner) {
		for _, c := range calls {
			args := make([]any, 0, 3*len(c))
			for _, i := range c {
				at := ms(deps[i].At)
				args = append(args, deps[i].Visitor, at, max(now, at+grace))
			}
			settleScript.EvalSha(ctx, p, r.siteKeys(deps[c[0]].Site)[:4], args...)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("presence: settle: %w", err)
	}
	out := make([]bool, len(deps))
	for k, c := range calls {
		v, err := cmds[k].(*redis.Cmd).Int64Slice()
		if err != nil || len(v) != len(c) {
			return nil, fmt.Errorf("presence: settle: unexpected reply %v (%v)", v, err)
		}
		for n, i := range c {
			out[i] = v[n] == 1
		}
	}
	return out, nil
}

// Prune implements Store.
func (r *Redis) Prune(ctx context.Context, sites ...string) ([]Pruned, error) {
	if len(sites) == 0 {
		return nil, nil
	}
	now := ms(r.opts.Now())
	cmds, err := r.pipelined(ctx, func(p redis.Pipeliner) {
		for _, site := range sites {
			r.prune(ctx, p, site, now)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("presence: prune: %w", err)
	}
	out := make([]Pruned, len(sites))
	for i, site := range sites {
		if out[i], err = pruned(site, cmds[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *Redis) prune(ctx context.Context, p redis.Pipeliner, site string, now int64) {
	pruneScript.EvalSha(ctx, p, r.siteKeys(site)[:4], now, now-r.opts.Window.Milliseconds())
}

func pruned(site string, cmd redis.Cmder) (Pruned, error) {
	p := Pruned{Site: site}
	v, err := cmd.(*redis.Cmd).Slice()
	if err != nil || len(v) != 3 {
		return p, fmt.Errorf("presence: prune: unexpected reply %v (%v)", v, err)
	}
	n, _ := v[0].(int64)
	p.Count = int(n)
	p.Expired = strings1(v[1])
	p.Left = strings1(v[2])
	return p, nil
}

func strings1(v any) []string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Snapshot implements Store.
func (r *Redis) Snapshot(ctx context.Context, site string, arrivals int) (*Snapshot, error) {
	now := ms(r.opts.Now())
	var (
		pages, refs *redis.MapStringStringCmd
		arr         *redis.StringSliceCmd
	)
	cmds, err := r.pipelined(ctx, func(p redis.Pipeliner) {
		r.prune(ctx, p, site, now)
		pages = p.HGetAll(ctx, r.key(site, "page"))
		refs = p.HGetAll(ctx, r.key(site, "ref"))
		arr = p.LRange(ctx, r.key(site, "arr"), 0, -1)
	})
	if err != nil {
		return nil, fmt.Errorf("presence: snapshot: %w", err)
	}
	snap := &Snapshot{}
	if snap.Pruned, err = pruned(site, cmds[0]); err != nil {
		return nil, err
	}
	snap.Count = snap.Pruned.Count

	pageOf := pages.Val()
	byPage := map[string]int{}
	for _, p := range pageOf {
		byPage[p]++
	}
	byRef := map[string]int{}
	for _, h := range refs.Val() {
		byRef[h]++
	}
	snap.Pages = tally(byPage)
	snap.Referrers = tally(byRef)

	seen := map[string]bool{}
	for _, raw := range arr.Val() {
		if len(snap.Arrivals) >= arrivals {
			break
		}
		var a Arrival
		if json.Unmarshal([]byte(raw), &a) != nil {
			continue
		}
		page, live := pageOf[a.Visitor]
		if !live || seen[a.Visitor] {
			continue
		}
		seen[a.Visitor] = true
		snap.Arrivals = append(snap.Arrivals, LiveArrival{Arrival: a, Page: page})
	}
	return snap, nil
}

// Sample implements Store. The first instance to take the minute's lock
// samples every site active within the window; the others return nil.
func (r *Redis) Sample(ctx context.Context) ([]Pruned, error) {
	t := r.opts.Now()
	now := ms(t)
	minute := t.Unix() / 60

	ok, err := r.rdb.SetNX(ctx, r.opts.Prefix+":sample:"+strconv.FormatInt(minute, 10), 1, 2*time.Minute).Result()
	if err != nil || !ok {
		return nil, err
	}
	sitesKey := r.opts.Prefix + ":sites"
	if err := r.rdb.ZRemRangeByScore(ctx, sitesKey, "-inf", strconv.FormatInt(now, 10)).Err(); err != nil {
		return nil, err
	}
	sites, err := r.rdb.ZRange(ctx, sitesKey, 0, -1).Result()
	if err != nil || len(sites) == 0 {
		return nil, err
	}
	out, err := r.Prune(ctx, sites...)
	if err != nil {
		return nil, err
	}
	day, field := dayKey(minute)
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, pr := range out {
			if pr.Count == 0 {
				continue
			}
			k := r.key(pr.Site, "online:"+day)
			p.HSet(ctx, k, field, pr.Count)
			p.Expire(ctx, k, 48*time.Hour)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("presence: sample: %w", err)
	}
	return out, nil
}

// dayKey names the UTC day of a unix minute and the minute within it.
func dayKey(minute int64) (day, field string) {
	return time.Unix(minute*60, 0).UTC().Format("20060102"), strconv.FormatInt(minute%1440, 10)
}

// Series implements Store.
func (r *Redis) Series(ctx context.Context, site string, from, to time.Time) ([]int, error) {
	first, n := seriesBounds(from, to)
	out := make([]int, n)
	if n == 0 {
		return out, nil
	}
	cmds := map[string]*redis.MapStringStringCmd{}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for m := first - first%1440; m < first+n; m += 1440 {
			day, _ := dayKey(m)
			cmds[day] = p.HGetAll(ctx, r.key(site, "online:"+day))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("presence: series: %w", err)
	}
	for i := range out {
		day, field := dayKey(first + int64(i))
		if v, ok := cmds[day].Val()[field]; ok {
			out[i], _ = strconv.Atoi(v)
		}
	}
	return out, nil
}

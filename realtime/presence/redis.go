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

// touchScript applies one hit. KEYS: seen, left, page, ref, arr.
// ARGV: visitor, at, kind (p|a|l), page, referrer, arrival JSON, window,
// grace, now, ttl, arrivals cap. Returns {arrived, previous page, state}
// with state 1 = leaving, 2 = stale.
var touchScript = redis.NewScript(`
local vk, at, kind = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local window, grace, now = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local ttl = ARGV[10]
local s = redis.call('ZSCORE', KEYS[1], vk)
if s then s = tonumber(s) end
if kind == 'l' then
  if (not s) or s <= now or s > at + window then return {0, '', 0} end
  redis.call('ZADD', KEYS[1], 'XX', 'LT', at + grace, vk)
  redis.call('ZADD', KEYS[2], 'GT', at, vk)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {0, '', 1}
end
local l = redis.call('ZSCORE', KEYS[2], vk)
if l then
  if at <= tonumber(l) then return {0, '', 2} end
  redis.call('ZREM', KEYS[2], vk)
end
local arrived = (not s) or s <= now
redis.call('ZADD', KEYS[1], 'GT', at + window, vk)
local prev = ''
if arrived then
  redis.call('HSET', KEYS[3], vk, ARGV[4])
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[4], vk, ARGV[5])
  else
    redis.call('HDEL', KEYS[4], vk)
  end
  redis.call('LPUSH', KEYS[5], ARGV[6])
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[11]) - 1)
else
  prev = redis.call('HGET', KEYS[3], vk) or ''
  if kind == 'p' then redis.call('HSET', KEYS[3], vk, ARGV[4]) end
end
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
return {arrived and 1 or 0, prev, 0}
`)

// settleScript removes a visitor whose leave is still pending.
// KEYS: seen, left, page, ref. ARGV: visitor, leave time, deadline.
var settleScript = redis.NewScript(`
local l = redis.call('ZSCORE', KEYS[2], ARGV[1])
if (not l) or tonumber(l) ~= tonumber(ARGV[2]) then return 0 end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) > tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
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

// Touch implements Store.
func (r *Redis) Touch(ctx context.Context, hits []Hit) ([]Result, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	now := ms(r.opts.Now())
	window, grace, ttl := r.opts.Window.Milliseconds(), r.opts.Grace.Milliseconds(), r.ttl()
	register := r.sitesToRegister(hits, now)

	args := make([][]any, len(hits))
	for i, h := range hits {
		kind, arrival := "a", []byte("{}")
		switch h.Kind {
		case Pageview:
			kind = "p"
		case Leave:
			kind = "l"
		}
		if h.Kind != Leave {
			var err error
			if arrival, err = json.Marshal(h.Arrival); err != nil {
				return nil, err
			}
		}
		args[i] = []any{h.Visitor, ms(h.At), kind, h.Page, h.Referrer, arrival, window, grace, now, ttl, r.opts.Arrivals}
	}

	cmds, err := r.pipelined(ctx, func(p redis.Pipeliner) {
		for i, h := range hits {
			touchScript.EvalSha(ctx, p, r.siteKeys(h.Site), args[i]...)
		}
		until := float64(now + ttl)
		for _, site := range register {
			p.ZAddGT(ctx, r.opts.Prefix+":sites", redis.Z{Score: until, Member: site})
		}
	})
	if err != nil {
		r.forget(register)
		return nil, fmt.Errorf("presence: touch: %w", err)
	}

	out := make([]Result, len(hits))
	for i := range hits {
		v, err := cmds[i].(*redis.Cmd).Slice()
		if err != nil || len(v) != 3 {
			return nil, fmt.Errorf("presence: touch: unexpected reply %v (%v)", v, err)
		}
		arrived, _ := v[0].(int64)
		prev, _ := v[1].(string)
		state, _ := v[2].(int64)
		out[i] = Result{Arrived: arrived == 1, PrevPage: prev, Leaving: state == 1, Stale: state == 2}
	}
	return out, nil
}

// sitesToRegister returns the sites of hits whose {prefix}:sites entry this
// process has not refreshed for a while, and marks them refreshed.
func (r *Redis) sitesToRegister(hits []Hit, now int64) []string {
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

// Settle implements Store.
func (r *Redis) Settle(ctx context.Context, deps []Departure) ([]bool, error) {
	if len(deps) == 0 {
		return nil, nil
	}
	now := ms(r.opts.Now())
	grace := r.opts.Grace.Milliseconds()
	cmds, err := r.pipelined(ctx, func(p redis.Pipeliner) {
		for _, d := range deps {
			at := ms(d.At)
			settleScript.EvalSha(ctx, p, r.siteKeys(d.Site)[:4], d.Visitor, at, max(now, at+grace))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("presence: settle: %w", err)
	}
	out := make([]bool, len(deps))
	for i := range deps {
		n, _ := cmds[i].(*redis.Cmd).Int64()
		out[i] = n == 1
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

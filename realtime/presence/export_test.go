package presence

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// perDepartureScript is settleScript before it took a site's departures in
// one call. SettlePerDeparture runs it.
var perDepartureScript = redis.NewScript(`
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

// perHitScript is touchScript as it was before it took a site's hits in one
// call: one call per hit. TouchPerHit runs it, as the reference of the
// differential test and the baseline of BenchmarkRedisTouch.
var perHitScript = redis.NewScript(`
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

// TouchPerHit is Redis.Touch with one perHitScript call per hit.
func TouchPerHit(ctx context.Context, r *Redis, hits []Sighting) ([]Result, error) {
	now := ms(r.opts.Now())
	window, grace, ttl := r.opts.Window.Milliseconds(), r.opts.Grace.Milliseconds(), r.ttl()
	fill := func(p redis.Pipeliner) error {
		for _, h := range hits {
			kind, arrival := "a", []byte("{}")
			switch h.Kind {
			case Pageview:
				kind = "p"
			case Leave:
				kind = "l"
			}
			if h.Kind != Leave {
				arrival, _ = json.Marshal(h.Arrival)
			}
			perHitScript.EvalSha(ctx, p, r.siteKeys(h.Site), h.Visitor, ms(h.At), kind, h.Page, h.Referrer, arrival, window, grace, now, ttl, r.opts.Arrivals)
		}
		return nil
	}
	cmds, err := r.rdb.Pipelined(ctx, fill)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := perHitScript.Load(ctx, r.rdb).Err(); err != nil {
			return nil, err
		}
		cmds, err = r.rdb.Pipelined(ctx, fill)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(hits))
	for i := range hits {
		v, err := cmds[i].(*redis.Cmd).Slice()
		if err != nil || len(v) != 3 {
			return nil, fmt.Errorf("unexpected reply %v (%v)", v, err)
		}
		arrived, _ := v[0].(int64)
		prev, _ := v[1].(string)
		state, _ := v[2].(int64)
		out[i] = Result{Arrived: arrived == 1, PrevPage: prev, Leaving: state == 1, Stale: state == 2}
	}
	return out, nil
}

// SettlePerDeparture is Redis.Settle with one perDepartureScript call per departure.
func SettlePerDeparture(ctx context.Context, r *Redis, deps []Departure) ([]bool, error) {
	now := ms(r.opts.Now())
	grace := r.opts.Grace.Milliseconds()
	fill := func(p redis.Pipeliner) error {
		for _, d := range deps {
			at := ms(d.At)
			perDepartureScript.EvalSha(ctx, p, r.siteKeys(d.Site)[:4], d.Visitor, at, max(now, at+grace))
		}
		return nil
	}
	cmds, err := r.rdb.Pipelined(ctx, fill)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := perDepartureScript.Load(ctx, r.rdb).Err(); err != nil {
			return nil, err
		}
		cmds, err = r.rdb.Pipelined(ctx, fill)
	}
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(deps))
	for i := range deps {
		n, _ := cmds[i].(*redis.Cmd).Int64()
		out[i] = n == 1
	}
	return out, nil
}

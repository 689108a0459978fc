#!/usr/bin/env bash
# Reproduces the figures of docs/BENCHMARKS.md (make bench):
#
#   bench/bench.sh [load] [ingest] [backlog] [go] [queries]   (default: all)
#
#   load     5,000 hits/s for $LOAD_DURATION against a fresh app with Redis +
#            ClickHouse, then a fresh embedded app: latency percentiles,
#            queue→store lag, peak RSS (VmHWM); then the bare handler.
#            LOAD_SETUPS picks some of redis_clickhouse, embedded, baseline
#   ingest   flat-out throughput, the app (Redis + ClickHouse) against
#            bench/baseline (bare net/http + one XADD per hit), alternating,
#            $ROUNDS rounds each: medians and the ratio, with a
#            bootstrap interval (bench/ratios.sh)
#   backlog  $BACKLOG hits queued in Redis while ClickHouse is unreachable,
#            then the time the flusher takes to store them all
#   scale    a collector (`pocketlytics collect`, GOMAXPROCS=1) beside a
#            control node, flat out for $DURATION: hits/s per collector
#            core, Redis commands and bytes per hit (docs/SCALING.md)
#   go       the Go benchmarks of the hot path, the stores and the live layer
#   queries  the analytics query benchmarks, when they exist
#
# Every process started here listens on 127.0.0.1 and is stopped on exit.
# Raw outputs (loadgen JSON, go test output) go to $BENCH_OUT. The machine
# is shared: the script prints the load average before each part; compare
# figures as ratios taken in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}         # each flat-out ingest round
CONCURRENCY=${CONCURRENCY:-32}    # loadgen senders, same for app and baseline
LOAD_RATE=${LOAD_RATE:-5000}
LOAD_DURATION=${LOAD_DURATION:-30s}
LOAD_SETUPS=${LOAD_SETUPS:-redis_clickhouse embedded baseline} # the load part's set-ups
APP_ENV=${APP_ENV:-}              # settings for the app alone, e.g. GOMAXPROCS=4
BACKLOG=${BACKLOG:-300000}
BENCH_OUT=${BENCH_OUT:-/tmp/pocketlytics-bench}
BENCHTIME=${BENCHTIME:-1s}
QUERY_ROWS_SQLITE=${QUERY_ROWS_SQLITE:-1000000}
QUERY_ROWS_CH=${QUERY_ROWS_CH:-10000000}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(load ingest backlog scale go queries)
want() { [[ " ${parts[*]} " == *" $1 "* ]]; }
setup() { [[ " $LOAD_SETUPS " == *" $1 "* ]]; }

log() { echo "bench: $*" >&2; }
section() { echo; echo "## $*"; echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

eval "$(bash scripts/services.sh)"
bash scripts/geo.sh

mkdir -p "$BENCH_OUT"
bin=$BENCH_OUT/bin
mkdir -p "$bin"
log "building into $bin"
go build -o "$bin/pocketlytics" .
go build -o "$bin/loadgen" ./bench/loadgen
go build -o "$bin/baseline" ./bench/baseline

run_id=$(date +%s)-$$
prefix="pl:bench:"
ch_db="pl_bench_${run_id//-/_}" # + _NAME per app
ch_url() { echo "clickhouse://default:@127.0.0.1:9000/${ch_db}_$1"; }

# BENCH_NICE=-10 runs Redis, the servers and loadgen ahead of other work on
# the machine (root only), for figures closer to a dedicated machine's.
nice=(nice -n "${BENCH_NICE:-0}")

# pids: the processes this script started and has not stopped yet.
pids=()
stop() { # PID: stops a process started here
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local -a left=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || left+=("$p"); done
	pids=("${left[@]}")
}
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
	for name in redis_clickhouse ingest backlog_10k backlog_100k scale; do
		clickhouse-client --query "DROP DATABASE IF EXISTS ${ch_db}_$name" 2>/dev/null || true
	done
	rm -rf "$BENCH_OUT/redis"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A Redis of the benchmark's own, so that its CPU time and command counts are
# the benchmark's alone (the shared one serves other test runs); persistence
# as in scripts/services.sh: append-only file, fsync every second.
redis_port=$(free_port)
rm -rf "$BENCH_OUT/redis"; mkdir -p "$BENCH_OUT/redis"
"${nice[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$BENCH_OUT/redis" \
	--appendonly yes --appendfsync everysec --save '' --logfile "$BENCH_OUT/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
REDIS_URL=redis://127.0.0.1:$redis_port/0
redis_cli() { redis-cli -u "$REDIS_URL" "$@"; }
for _ in $(seq 1 100); do redis_cli ping >/dev/null 2>&1 && break; sleep 0.1; done

wait_http() { # url
	for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
	log "$1 did not answer"; return 1
}

# start_app NAME [VAR=value...]: a fresh data dir, a superuser, a site and a
# user; sets app_pid, app_url, site_id, su_token.
# --dev=false: PocketBase takes a binary under the temp dir for `go run` and
# turns on dev mode (every SQL statement and request logged to stdout).
start_app() {
	local name=$1; shift
	local dir=$BENCH_OUT/$name
	rm -rf "$dir"; mkdir -p "$dir"
	local port; port=$(free_port)
	local -a env=(env -u REDIS_URL -u CLICKHOUSE_URL RATE_LIMIT=1000000000 METRICS_TOKEN=bench REDIS_PREFIX="$prefix$name:" $APP_ENV "$@")
	"${env[@]}" "$bin/pocketlytics" superuser upsert bench@example.com bench-password-123 --dir "$dir" --dev=false >/dev/null
	"${nice[@]}" "${env[@]}" "$bin/pocketlytics" serve --http "127.0.0.1:$port" --dir "$dir" --dev=false >"$dir/app.log" 2>&1 &
	app_pid=$!
	pids+=("$app_pid")
	app_url=http://127.0.0.1:$port
	wait_http "$app_url/api/health"

	su_token=$(curl -fsS "$app_url/api/collections/_superusers/auth-with-password" -H 'Content-Type: application/json' \
		-d '{"identity":"bench@example.com","password":"bench-password-123"}' | jq -r .token)
	curl -fsS -o /dev/null "$app_url/api/collections/users/records" -H 'Content-Type: application/json' \
		-d '{"email":"owner@example.com","password":"owner-password-123","passwordConfirm":"owner-password-123"}'
	local token
	token=$(curl -fsS "$app_url/api/collections/users/auth-with-password" -H 'Content-Type: application/json' \
		-d '{"identity":"owner@example.com","password":"owner-password-123"}' | jq -r .token)
	site_id=$(curl -fsS "$app_url/api/collections/sites/records" -H 'Content-Type: application/json' -H "Authorization: $token" \
		-d '{"name":"Bench","domains":["example.com"],"timezone":"UTC"}' | jq -r .id)
	log "$name: pid $app_pid at $app_url, site $site_id"
}

stop_app() {
	stop "$app_pid"
}

# loadgen URL OUT.json [flags...]
loadgen() {
	local url=$1 out=$2; shift 2
	"${nice[@]}" "$bin/loadgen" -url "$url" -json "$@" >"$out"
}

vm() { awk -v k="$2:" '$1 == k { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status"; }

# gob NAME PKG PATTERN [flags...]: one package's benchmarks, raw output kept.
gob() {
	local name=$1 pkg=$2 pat=$3; shift 3
	go test -run '^$' -bench "$pat" -benchmem "$@" "$pkg" | tee "$BENCH_OUT/go-$name.txt" | grep -E '^(Benchmark|--- FAIL|FAIL|    .*_test.go)' || true
}

# cpu PID: CPU time (user + system) the process used so far, in seconds.
cpu() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# load_run NAME [VAR=value...]: LOAD_RATE hits/s on a fresh app.
load_run() {
	local name=$1; shift
	start_app "$name" "$@"
	local out=$BENCH_OUT/$name-rate$LOAD_RATE.json
	loadgen "$app_url" "$out" -sites "$site_id=example.com" -trust-proxy-token "$su_token" \
		-rate "$LOAD_RATE" -duration "$LOAD_DURATION" -concurrency 64 -lag -drain
	jq -r --arg name "$name" '"\($name): \(.acceptedPerSecond | floor) hits/s accepted, latency ms p50 \(.latencyMs.p50) p95 \(.latencyMs.p95) p99 \(.latencyMs.p99) max \(.latencyMs.max); store lag ms p50 \(.lagMs.p50) p95 \(.lagMs.p95) max \(.lagMs.max) (\(.lagMs.samples) samples); drained \(.drainMs // .drainFailed) ms after the last hit; errors \(.errors)"' "$out"
	echo "$name: peak RSS (VmHWM) $(vm "$app_pid" VmHWM), RSS now $(vm "$app_pid" VmRSS)"
	# The same hits timed inside the app (handler start to queued): what
	# is left of loadgen's figure is the machine's scheduling and loopback.
	curl -fsS -H "Authorization: Bearer bench" "$app_url/metrics" | awk -v name="$name" '
		/^pocketlytics_ingest_seconds_bucket/ { match($0, /le="[^"]+"/); le[++n] = substr($0, RSTART + 4, RLENGTH - 5); c[n] = $2 }
		/^pocketlytics_ingest_seconds_count/ { total = $2 }
		END {
			split("0.5 0.95 0.99", qs, " "); out = ""
			for (j = 1; j <= 3; j++) for (i = 1; i <= n; i++) if (c[i] >= qs[j] * total) { out = out sprintf(" p%s ≤ %s ms", qs[j] * 100, le[i] == "+Inf" ? "inf" : le[i] * 1000); break }
			printf "%s: in the app (handler to queued), %d hits:%s\n", name, total, out }'
	stop_app
}

# start_baseline: bench/baseline on a free port; sets base_pid, base_url.
start_baseline() {
	local port; port=$(free_port)
	"${nice[@]}" "$bin/baseline" -addr "127.0.0.1:$port" -redis-url "$REDIS_URL" -stream "${prefix}baseline" &
	base_pid=$!
	pids+=("$base_pid")
	base_url=http://127.0.0.1:$port
	for _ in $(seq 1 100); do curl -s -o /dev/null "$base_url/" && break; sleep 0.1; done
}

want load && section "p99, lag and RSS at $LOAD_RATE hits/s for $LOAD_DURATION"
if want load && setup redis_clickhouse; then
	load_run redis_clickhouse REDIS_URL="$REDIS_URL" CLICKHOUSE_URL="$(ch_url redis_clickhouse)"
fi
if want load && setup embedded; then
	load_run embedded
fi
# The same load on the bare handler: the latency floor of this machine.
if want load && setup baseline; then
	start_baseline
	loadgen "$base_url" "$BENCH_OUT/baseline-rate$LOAD_RATE.json" -sites any=example.com \
		-rate "$LOAD_RATE" -duration "$LOAD_DURATION" -concurrency 64
	jq -r '"baseline (bare net/http + XADD): \(.acceptedPerSecond | floor) hits/s accepted, latency ms p50 \(.latencyMs.p50) p95 \(.latencyMs.p95) p99 \(.latencyMs.p99) max \(.latencyMs.max)"' \
		"$BENCH_OUT/baseline-rate$LOAD_RATE.json"
	stop "$base_pid"
	redis_cli del "${prefix}baseline" >/dev/null
fi

if want ingest; then
	section "flat-out ingest: app (Redis + ClickHouse) vs bare net/http + XADD, $ROUNDS × $DURATION each, -concurrency $CONCURRENCY"
	start_app ingest REDIS_URL="$REDIS_URL" CLICKHOUSE_URL="$(ch_url ingest)"
	start_baseline
	flags=(-sites "$site_id=example.com" -rate 0 -duration "$DURATION" -concurrency "$CONCURRENCY" -max-hits 10000000)
	# The proxy setting, and a warm-up of both.
	loadgen "$app_url" /dev/null "${flags[@]}" -duration 2s -trust-proxy-token "$su_token" -drain
	loadgen "$base_url" /dev/null "${flags[@]}" -duration 2s
	for f in app baseline ratio cpu-app cpu-baseline; do : >"$BENCH_OUT/ingest-$f.txt"; done
	# ingest_round KIND URL PID [flags...]: one flat-out run; prints hits/s,
	# p99 and the CPU microseconds per accepted hit of the server, of
	# redis-server and of loadgen (the app's includes its flusher and live
	# layer; the drain after -drain is loadgen's wait, not its CPU).
	ingest_round() {
		local kind=$1 url=$2 pid=$3 out=$BENCH_OUT/ingest-$1-$round.json; shift 3
		local s0 r0 s1 r1 l
		s0=$(cpu "$pid"); r0=$(cpu "$redis_pid")
		# `times` in the subshell: the CPU time of its child, loadgen.
		l=$( { "${nice[@]}" "$bin/loadgen" -url "$url" -json "${flags[@]}" "$@" >"$out"; times; } | tail -1 |
			awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print t }')
		s1=$(cpu "$pid"); r1=$(cpu "$redis_pid")
		jq -r --arg s "$(echo "$s1 - $s0" | bc -l)" --arg r "$(echo "$r1 - $r0" | bc -l)" --arg l "$l" \
			'"\(.acceptedPerSecond) \(.latencyMs.p99) \(($s | tonumber) * 1e6 / .accepted | floor) \(($r | tonumber) * 1e6 / .accepted | floor) \(($l | tonumber) * 1e6 / .accepted | floor)"' "$out"
	}
	for round in $(seq 1 "$ROUNDS"); do
		read -r b bp bc br bl < <(ingest_round baseline "$base_url" "$base_pid")
		redis_cli del "${prefix}baseline" >/dev/null
		# -drain: the flusher's backlog is stored before the next round
		# starts (the drain is outside the measured time, its CPU is not).
		read -r a ap ac ar al < <(ingest_round app "$app_url" "$app_pid" -drain -drain-timeout 5m)
		echo "$b" >>"$BENCH_OUT/ingest-baseline.txt"; echo "$a" >>"$BENCH_OUT/ingest-app.txt"
		echo "$a / $b" | bc -l >>"$BENCH_OUT/ingest-ratio.txt"
		echo "$bc $br $bl" >>"$BENCH_OUT/ingest-cpu-baseline.txt"; echo "$ac $ar $al" >>"$BENCH_OUT/ingest-cpu-app.txt"
		printf 'round %d: baseline %.0f/s p99 %s ms, CPU µs/hit server %s redis %s loadgen %s; app %.0f/s p99 %s ms, CPU µs/hit server %s redis %s loadgen %s; app/baseline %.2f; load %s\n' \
			"$round" "$b" "$bp" "$bc" "$br" "$bl" "$a" "$ap" "$ac" "$ar" "$al" "$(echo "$a / $b" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
	done
	mb=$(median <"$BENCH_OUT/ingest-baseline.txt")
	ma=$(median <"$BENCH_OUT/ingest-app.txt")
	mr=$(median <"$BENCH_OUT/ingest-ratio.txt")
	printf 'median: baseline %.0f hits/s, app %.0f hits/s, ratio of medians %.2f, median of per-round ratios %.2f\n' \
		"$mb" "$ma" "$(echo "$ma / $mb" | bc -l)" "$mr"
	# How sure: the rounds' spread on this machine is several percent.
	# Pool several runs with bench/ratios.sh FILE....
	bash bench/ratios.sh "$BENCH_OUT/ingest-ratio.txt"
	# The machine's CPU is the limit for both: the throughput ratio a quiet
	# machine would show is about the inverse ratio of the CPU per hit of
	# everything involved (server + Redis + loadgen).
	for k in baseline app; do
		printf 'median CPU µs/hit, %s: server %s, redis %s, loadgen %s\n' "$k" \
			"$(cut -d' ' -f1 "$BENCH_OUT/ingest-cpu-$k.txt" | median)" \
			"$(cut -d' ' -f2 "$BENCH_OUT/ingest-cpu-$k.txt" | median)" \
			"$(cut -d' ' -f3 "$BENCH_OUT/ingest-cpu-$k.txt" | median)"
	done
	stop "$base_pid"
	stop_app
fi

# backlog_run NAME [VAR=value...]: BACKLOG hits queued in Redis while
# ClickHouse is unreachable (nothing listens on port 1), then a restart with
# ClickHouse and the time until every event is stored.
backlog_run() {
	local name=$1; shift
	start_app "$name" REDIS_URL="$REDIS_URL" CLICKHOUSE_URL="clickhouse://default:@127.0.0.1:1/${ch_db}_$name" "$@"
	loadgen "$app_url" "$BENCH_OUT/$name-fill.json" -sites "$site_id=example.com" -trust-proxy-token "$su_token" \
		-rate 0 -duration 10m -max-hits "$BACKLOG" -concurrency "$CONCURRENCY"
	stop_app
	local queued port start ready end h rows secs served
	queued=$(redis_cli xlen "$prefix$name:events")
	port=$(free_port)
	start=$(date +%s.%N)
	"${nice[@]}" env -u CLICKHOUSE_URL RATE_LIMIT=1000000000 REDIS_URL="$REDIS_URL" REDIS_PREFIX="$prefix$name:" \
		CLICKHOUSE_URL="$(ch_url "$name")" "$@" \
		"$bin/pocketlytics" serve --http "127.0.0.1:$port" --dir "$BENCH_OUT/$name" --dev=false >>"$BENCH_OUT/$name/app.log" 2>&1 &
	app_pid=$!
	pids+=("$app_pid")
	wait_http "http://127.0.0.1:$port/api/health"
	ready=$(date +%s.%N)
	while :; do
		h=$(curl -fsS "http://127.0.0.1:$port/api/analytics/health")
		[ "$(jq '.queueLength + .pending + .spooled' <<<"$h")" = 0 ] && [ "$(jq -r .lastFlush <<<"$h")" != null ] && break
		sleep 0.05
	done
	end=$(date +%s.%N)
	rows=$(clickhouse-client --query "SELECT count() FROM ${ch_db}_$name.events")
	secs=$(echo "$end - $start" | bc -l)
	served=$(echo "$end - $ready" | bc -l)
	printf '%s: stream held %d entries; %d rows stored %.2f s after the process started (%.0f rows/s), %.2f s after it answered HTTP (%.0f rows/s); peak RSS %s\n' \
		"$name" "$queued" "$rows" "$secs" "$(echo "$rows / $secs" | bc -l)" "$served" "$(echo "$rows / $served" | bc -l)" "$(vm "$app_pid" VmHWM)"
	stop_app
}

if want backlog; then
	section "backlog drain: $BACKLOG hits queued in Redis, then stored in ClickHouse"
	backlog_run backlog_10k FLUSH_BATCH=10000
	backlog_run backlog_100k FLUSH_BATCH=100000
fi

if want scale; then
	section "one collector core: \`pocketlytics collect\` with GOMAXPROCS=1, flat out for $DURATION, -concurrency $CONCURRENCY"
	start_app scale REDIS_URL="$REDIS_URL" CLICKHOUSE_URL="$(ch_url scale)"
	control_pid=$app_pid
	dir=$BENCH_OUT/scale-collector; rm -rf "$dir"; mkdir -p "$dir"
	port=$(free_port)
	"${nice[@]}" env -u REDIS_URL -u CLICKHOUSE_URL GOMAXPROCS=1 RATE_LIMIT=1000000000 REDIS_PREFIX="${prefix}scale:" \
		REDIS_URL="$REDIS_URL" CLICKHOUSE_URL="$(ch_url scale)" TRUSTED_PROXY_HEADERS=X-Forwarded-For \
		"$bin/pocketlytics" collect --http "127.0.0.1:$port" --dir "$dir" --dev=false >"$dir/app.log" 2>&1 &
	col_pid=$!
	pids+=("$col_pid")
	wait_http "http://127.0.0.1:$port/api/health"
	flags=(-sites "$site_id=example.com" -rate 0 -concurrency "$CONCURRENCY" -max-hits 10000000 -drain -drain-timeout 5m)
	loadgen "http://127.0.0.1:$port" /dev/null "${flags[@]}" -duration 2s # warm-up
	stat() { redis_cli info "$1" | awk -F: -v k="$2" '$1 == k { print $2 + 0 }'; }
	c0=$(cpu "$col_pid"); k0=$(cpu "$control_pid"); r0=$(cpu "$redis_pid")
	n0=$(stat stats total_commands_processed); i0=$(stat stats total_net_input_bytes); o0=$(stat stats total_net_output_bytes)
	out=$BENCH_OUT/scale.json
	loadgen "http://127.0.0.1:$port" "$out" "${flags[@]}" -duration "$DURATION"
	c1=$(cpu "$col_pid"); k1=$(cpu "$control_pid"); r1=$(cpu "$redis_pid")
	n1=$(stat stats total_commands_processed); i1=$(stat stats total_net_input_bytes); o1=$(stat stats total_net_output_bytes)
	hits=$(jq .accepted "$out")
	jq -r '"collector: \(.acceptedPerSecond | floor) hits/s accepted on one core, p99 \(.latencyMs.p99) ms, errors \(.errors)"' "$out"
	printf 'per hit (the run and its drain; both nodes flush): collector CPU %.0f µs (%.0f hits/s per core), control node CPU %.0f µs, redis-server CPU %.0f µs, Redis commands %.3f, bytes in %.0f, out %.0f; load %s\n' \
		"$(echo "($c1 - $c0) * 1000000 / $hits" | bc -l)" "$(echo "$hits / ($c1 - $c0)" | bc -l)" "$(echo "($k1 - $k0) * 1000000 / $hits" | bc -l)" \
		"$(echo "($r1 - $r0) * 1000000 / $hits" | bc -l)" "$(echo "($n1 - $n0) / $hits" | bc -l)" \
		"$(echo "($i1 - $i0) / $hits" | bc -l)" "$(echo "($o1 - $o0) / $hits" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
	rows=$(clickhouse-client --query "SELECT count() FROM ${ch_db}_scale.events")
	echo "rows stored: $rows"
	stop "$col_pid"
	stop_app
fi

if want go; then
	section "Go benchmarks (-benchtime $BENCHTIME, realtime 1000x)"
	gob collect ./hooks/ '^BenchmarkCollect$' -benchtime "$BENCHTIME"
	gob enrich ./internal/enrich/ '^BenchmarkRun' -benchtime "$BENCHTIME"
	gob localq ./internal/queue/localq/ . -benchtime "$BENCHTIME"
	gob redisq ./internal/queue/redisq/ . -benchtime "$BENCHTIME"
	gob sqlite ./internal/store/sqlitestore/ '^BenchmarkInsert$' -benchtime "$BENCHTIME"
	gob clickhouse ./internal/store/chstore/ '^BenchmarkInsert$' -benchtime 5x
	gob flush ./internal/flush/ . -benchtime 200000x
	gob realtime ./realtime/ . -benchtime 1000x
fi

if want queries; then
	section "analytics queries: SQLite over $QUERY_ROWS_SQLITE events, ClickHouse over $QUERY_ROWS_CH (30 days, one site)"
	if ! grep -qs '^func BenchmarkQueries' internal/store/sqlitestore/*_test.go internal/store/chstore/*_test.go; then
		echo "no query benchmarks on this branch yet (BenchmarkQueries in internal/store/*)"
	else
		# Fresh data sets each run (loading 10M rows into ClickHouse takes
		# minutes); PL_BENCH_KEEP=1 keeps them for the next run (ClickHouse
		# database pl_bench_ROWS, SQLite file $TMPDIR/pl_bench_sqlite_ROWS.db).
		PL_BENCH_ROWS=$QUERY_ROWS_SQLITE gob queries-sqlite ./internal/store/sqlitestore/ '^BenchmarkQueries$' -benchtime "$BENCHTIME" -timeout 60m
		PL_BENCH_ROWS=$QUERY_ROWS_CH gob queries-clickhouse ./internal/store/chstore/ '^BenchmarkQueries$' -benchtime "$BENCHTIME" -timeout 60m
	fi
fi

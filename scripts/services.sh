#!/usr/bin/env bash
# Installs (from Debian's packages) and starts the services the test suite
# needs, when they are missing: redis-server, clickhouse-server, chromium, nginx,
# and the npm packages of the browser tests and the front-end build. Idempotent: a service that
# already answers is left alone.
#
# Prints the environment the tests read, for eval:
#   eval "$(scripts/services.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "services: $*" >&2; }

need=()
command -v redis-server >/dev/null || need+=(redis-server redis-tools)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v clickhouse-server >/dev/null || need+=(clickhouse-server clickhouse-client)
command -v chromium >/dev/null || need+=(chromium)
command -v curl >/dev/null || need+=(curl)
command -v node >/dev/null || need+=(nodejs npm)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx) # tests/scaleout runs deploy/nginx
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

run_dir=${PL_SERVICES_DIR:-/tmp/pocketlytics-services}
mkdir -p "$run_dir"

redis_port=${PL_REDIS_PORT:-6379}
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
	log "starting redis-server on 127.0.0.1:$redis_port"
	mkdir -p "$run_dir/redis"
	redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$run_dir/redis" \
		--appendonly yes --appendfsync everysec --save '' --daemonize yes \
		--logfile "$run_dir/redis.log" >&2
fi
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" ping >/dev/null || { log "redis did not answer"; exit 1; }

if ! curl -fsS http://127.0.0.1:8123/ping >/dev/null 2>&1; then
	log "starting clickhouse-server on 127.0.0.1:9000 (native) / 8123 (http)"
	# Debian's package starts nothing without an init system; run it as the
	# clickhouse user it set up, detached from this shell.
	mkdir -p /var/lib/clickhouse /var/log/clickhouse-server
	chown -R clickhouse:clickhouse /var/lib/clickhouse /var/log/clickhouse-server 2>/dev/null || true
	if id clickhouse >/dev/null 2>&1; then
		setsid su -s /bin/sh clickhouse -c 'exec clickhouse-server --config-file=/etc/clickhouse-server/config.xml' \
			>"$run_dir/clickhouse.out" 2>&1 </dev/null &
	else
		setsid clickhouse-server --config-file=/etc/clickhouse-server/config.xml \
			>"$run_dir/clickhouse.out" 2>&1 </dev/null &
	fi
fi
for _ in $(seq 1 300); do curl -fsS http://127.0.0.1:8123/ping >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS http://127.0.0.1:8123/ping >/dev/null || { log "clickhouse did not answer"; tail -20 "$run_dir/clickhouse.out" >&2; exit 1; }

# Browser tests drive Debian's chromium through playwright-core.
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
	log "npm ci in tests/e2e"
	(cd tests/e2e && npm ci --no-audit --no-fund --silent) >&2
fi
# TestEmbeddedAssetsAreCurrent rebuilds the front-end with web/'s esbuild.
if [ ! -d web/node_modules/esbuild ]; then
	log "npm ci in web"
	(cd web && npm ci --no-audit --no-fund --silent) >&2
fi

echo "export REDIS_URL=redis://127.0.0.1:$redis_port/0"
echo "export CLICKHOUSE_URL=clickhouse://default:@127.0.0.1:9000/pocketlytics_test"
echo "export CHROMIUM_PATH=$(command -v chromium)"

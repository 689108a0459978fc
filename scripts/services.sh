#!/usr/bin/env bash
# Installs (from Debian's packages) and starts the services the test suite
# needs, when they are missing: redis-server, clickhouse-server (and two more on
# other ports, with ZooKeeper, for the cluster tests), chromium, nginx,
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
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper) # replicated tables of the cluster tests
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

# The cluster tests run on local servers: CLICKHOUSE_TEST_SHARDS names the
# server above and a second one as two shards, CLICKHOUSE_TEST_REPLICAS the
# second and a third as two replicas of one shard, coordinated by ZooKeeper
# (which the first server, shared and already running, does without).
zk_port=${PL_ZOOKEEPER_PORT:-2181}
ch2_port=${PL_CLICKHOUSE2_PORT:-9100}
ch3_port=${PL_CLICKHOUSE3_PORT:-9200}
zk_up() { [ "$(exec 3<>/dev/tcp/127.0.0.1/"$zk_port" && printf ruok >&3 && cat <&3)" = imok ]; } 2>/dev/null
if ! zk_up; then
	log "starting zookeeper on 127.0.0.1:$zk_port"
	mkdir -p "$run_dir/zookeeper/data"
	printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=ruok\nadmin.enableServer=false\n' \
		"$run_dir/zookeeper/data" "$zk_port" >"$run_dir/zookeeper/zoo.cfg"
	setsid java -Xmx256m -cp /usr/share/java/zookeeper.jar -Dzookeeper.log.dir="$run_dir/zookeeper" \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$run_dir/zookeeper/zoo.cfg" \
		>"$run_dir/zookeeper.out" 2>&1 </dev/null &
fi
cluster_xml=$(cat <<XML
<yandex>
    <remote_servers>
        <pocketlytics_test_shards>
            <shard><replica><host>127.0.0.1</host><port>9000</port></replica></shard>
            <shard><replica><host>127.0.0.1</host><port>$ch2_port</port></replica></shard>
        </pocketlytics_test_shards>
        <pocketlytics_test_replicas>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$ch2_port</port></replica>
                <replica><host>127.0.0.1</host><port>$ch3_port</port></replica>
            </shard>
        </pocketlytics_test_replicas>
    </remote_servers>
</yandex>
XML
)
zk_xml="<yandex><zookeeper><node><host>127.0.0.1</host><port>$zk_port</port></node></zookeeper></yandex>"
# The first server reloads remote_servers from config.d on the fly.
mkdir -p /etc/clickhouse-server/config.d
if [ "$(cat /etc/clickhouse-server/config.d/pocketlytics-test-cluster.xml 2>/dev/null)" != "$cluster_xml" ]; then
	echo "$cluster_xml" >/etc/clickhouse-server/config.d/pocketlytics-test-cluster.xml
fi
# start_clickhouse PORT starts a server on PORT (native), PORT+1 (http) and
# PORT+9 (replication), its data and config in $run_dir/clickhouse-PORT.
start_clickhouse() {
	local port=$1 dir=$run_dir/clickhouse-$1
	curl -fsS "http://127.0.0.1:$((port + 1))/ping" >/dev/null 2>&1 && return
	log "starting clickhouse-server on 127.0.0.1:$port (native) / $((port + 1)) (http)"
	mkdir -p "$dir/config.d" "$dir/data"
	sed -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$port</tcp_port>#" \
		-e "s#<http_port>8123</http_port>#<http_port>$((port + 1))</http_port>#" \
		-e "s#<interserver_http_port>9009</interserver_http_port>#<interserver_http_port>$((port + 9))</interserver_http_port>#" \
		-e "s#<https_port>8443</https_port>##; s#<tcp_port_secure>9440</tcp_port_secure>##" \
		-e "s#/var/lib/clickhouse/#$dir/data/#g; s#/var/log/clickhouse-server/#$dir/#g" \
		-e "s#<users_config>users.xml</users_config>#<users_config>/etc/clickhouse-server/users.xml</users_config>#" \
		/etc/clickhouse-server/config.xml >"$dir/config.xml"
	echo "$cluster_xml" >"$dir/config.d/pocketlytics-test-cluster.xml"
	echo "$zk_xml" >"$dir/config.d/pocketlytics-test-zookeeper.xml"
	chown -R clickhouse:clickhouse "$dir" 2>/dev/null || true
	if id clickhouse >/dev/null 2>&1; then
		setsid su -s /bin/sh clickhouse -c "exec clickhouse-server --config-file=$dir/config.xml" \
			>"$dir.out" 2>&1 </dev/null &
	else
		setsid clickhouse-server --config-file="$dir/config.xml" >"$dir.out" 2>&1 </dev/null &
	fi
}
start_clickhouse "$ch2_port"
start_clickhouse "$ch3_port"
for port in "$ch2_port" "$ch3_port"; do
	for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$((port + 1))/ping" >/dev/null 2>&1 && break; sleep 0.2; done
	curl -fsS "http://127.0.0.1:$((port + 1))/ping" >/dev/null || { log "clickhouse on $port did not answer"; tail -20 "$run_dir/clickhouse-$port.out" >&2; exit 1; }
done
# A running first server reads the clusters within seconds of the file's change.
shards_query='SELECT+count()+FROM+system.clusters+WHERE+cluster=%27pocketlytics_test_shards%27'
for _ in $(seq 1 100); do [ "$(curl -fsS "http://127.0.0.1:8123/?query=$shards_query")" = 2 ] && break; sleep 0.2; done
[ "$(curl -fsS "http://127.0.0.1:8123/?query=$shards_query")" = 2 ] || { log "clickhouse on 9000 did not load the test clusters"; exit 1; }
for _ in $(seq 1 100); do zk_up && break; sleep 0.2; done
zk_up || { log "zookeeper did not answer"; tail -20 "$run_dir/zookeeper.out" >&2; exit 1; }

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
echo "export CLICKHOUSE_TEST_SHARDS=pocketlytics_test_shards CLICKHOUSE_TEST_REPLICAS=pocketlytics_test_replicas"
echo "export CHROMIUM_PATH=$(command -v chromium)"

# sys.sh LABEL RATE PORT [env...]: per-hit CPU and syscalls of the app and redis (port 16390)
label=$1; rate=$2; port=$3; shift 3
RP=$(cat /tmp/plprof/rpid)
redis-cli -p 16390 flushall >/dev/null; clickhouse-client --query "DROP DATABASE IF EXISTS pl_bench_prof"
source /tmp/plprof/setup.sh /tmp/plbench-pprof2 $port "$@" >/dev/null
/tmp/plb-smoke/bin/loadgen -url $app_url -sites $site_id=example.com -trust-proxy-token $su_token -rate 0 -duration 2s -drain >/dev/null
io() { awk '/syscr|syscw/{s+=$2} END{print s}' /proc/$1/io; }
c0=$(bash /tmp/plprof/cpu.sh $app_pid); r0=$(bash /tmp/plprof/cpu.sh $RP); s0=$(io $app_pid); q0=$(io $RP); v0=$(awk '/voluntary_ctxt_switches/{s+=$2} END{print s}' /proc/$app_pid/task/*/status)
/tmp/plb-smoke/bin/loadgen -url $app_url -sites $site_id=example.com -rate $rate -duration 10s -concurrency 64 -json > r.json
c1=$(bash /tmp/plprof/cpu.sh $app_pid); r1=$(bash /tmp/plprof/cpu.sh $RP); s1=$(io $app_pid); q1=$(io $RP); v1=$(awk '/voluntary_ctxt_switches/{s+=$2} END{print s}' /proc/$app_pid/task/*/status); n=$(jq .accepted r.json)
echo "$label rate $rate: $(jq .acceptedPerSecond r.json|cut -d. -f1)/s p50 $(jq .latencyMs.p50 r.json) p99 $(jq .latencyMs.p99 r.json); app $(echo "($c1-$c0)*1000000/$n"|bc) us/hit $(echo "($s1-$s0)/$n"|bc -l | cut -c1-4) rw-syscalls/hit; redis $(echo "($r1-$r0)*1000000/$n"|bc) us/hit $(echo "($q1-$q0)/$n"|bc -l|cut -c1-4) syscalls/hit; load $(cut -d' ' -f1 /proc/loadavg)"
kill $app_pid; wait $app_pid 2>/dev/null

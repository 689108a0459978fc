#!/usr/bin/env bash
# bench/quiet.sh CMD...: runs CMD while every other process of the machine
# waits in an idle CPU cgroup, then puts them back. For latency figures on a
# shared machine: other builds keep their memory and disk, not the cores.
# Needs root and the cgroup v1 cpu controller (cpu.idle); Redis and
# ClickHouse servers stay beside CMD.
set -uo pipefail
cg=/sys/fs/cgroup/cpu
[ -w "$cg/cgroup.procs" ] || { echo "quiet.sh: needs root and $cg (cgroup v1)" >&2; exit 1; }
mkdir -p "$cg/bench" "$cg/others"
echo 1 >"$cg/others/cpu.idle"
echo $$ >"$cg/bench/cgroup.procs"
for p in $(pgrep -f clickhouse-server) $(pgrep -x redis-server); do echo "$p" >"$cg/bench/cgroup.procs" 2>/dev/null; done
idle_others() {
	for p in $(cat "$cg/cgroup.procs"); do echo "$p" >"$cg/others/cgroup.procs" 2>/dev/null; done
}
idle_others
# What the others start meanwhile lands in their group, except children of
# processes still in the root group: move those too, every 2 s.
( while sleep 2; do idle_others; done ) &
mover=$!
"$@"
rc=$?
kill "$mover"
for p in $(cat "$cg/others/cgroup.procs") $(cat "$cg/bench/cgroup.procs"); do echo "$p" >"$cg/cgroup.procs" 2>/dev/null; done
exit $rc

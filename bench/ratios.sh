#!/usr/bin/env bash
# Summarizes per-round throughput ratios (app / baseline), one per line, as
# bench/bench.sh ingest writes them to $BENCH_OUT/ingest-ratio.txt:
#
#   bench/ratios.sh FILE...     (several files: their rounds pooled)
#
# Prints the number of rounds, how many reached 1, the median and the mean,
# and a 95% bootstrap interval of each (2,000 resamples of the rounds, a
# fixed seed so a rerun prints the same). On this shared machine a round's
# ratio moves by ±5% or more: a difference between app and baseline is
# real only when the interval of the mean excludes 1.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }

resamples=2000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat "$@" | awk 'NF { print $1 }' >"$tmp/ratios"
[ -s "$tmp/ratios" ] || { echo "ratios: no rounds in $*" >&2; exit 1; }

# The rounds' own figures (rounds, how many at or above 1, median, mean) to
# summary, then one line per resample: its mean and its median.
awk -v b="$resamples" -v summary="$tmp/summary" '
	function median(x, n,   i, j, v) { # sorts x[1..n] in place: a few dozen rounds at most
		for (i = 2; i <= n; i++) { v = x[i]; for (j = i - 1; j >= 1 && x[j] > v; j--) x[j + 1] = x[j]; x[j + 1] = v }
		return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
	}
	{ r[NR] = $1; s += $1; wins += ($1 >= 1); x[NR] = $1 }
	END {
		print NR, wins, median(x, NR), s / NR >summary
		srand(1)
		for (k = 1; k <= b; k++) {
			s = 0
			for (i = 1; i <= NR; i++) { x[i] = r[int(rand() * NR) + 1]; s += x[i] }
			print s / NR, median(x, NR)
		}
	}' "$tmp/ratios" >"$tmp/boot"
read -r n wins med mean <"$tmp/summary"

lo=$((resamples * 25 / 1000)) hi=$((resamples * 975 / 1000))
interval() { # COLUMN: the 2.5th and 97.5th percentiles of the resamples
	cut -d' ' -f"$1" "$tmp/boot" | sort -g | awk -v lo="$lo" -v hi="$hi" 'NR == lo { a = $1 } NR == hi { b = $1 } END { printf "%.3f–%.3f", a, b }'
}

printf 'ratios: %d rounds, %d at or above 1; median %.3f (95%% bootstrap interval %s), mean %.3f (%s)\n' \
	"$n" "$wins" "$med" "$(interval 2)" "$mean" "$(interval 1)"

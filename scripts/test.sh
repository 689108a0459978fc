#!/usr/bin/env bash
# The whole test suite: installs and starts Redis, ClickHouse and Chromium when
# missing, runs vet, every Go test (integration and browser tests included)
# and a short fuzz run, and fails when any test was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3

eval "$(bash scripts/services.sh)"
bash scripts/geo.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT

go vet ./...
go build -o /dev/null ./scripts/testreport

go test -count=1 -json -timeout 15m ./... >"$log" 2>&1 || true

# A short run of every fuzz target (longer: FUZZ_TIME=10m make test).
fuzz_status=0
for target in $(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -r dirname | sort -u | sed 's|^|./|'); do
	for f in $(grep -h '^func Fuzz' "$target"/*_test.go | sed -E 's/func (Fuzz[A-Za-z0-9_]*).*/\1/'); do
		echo "fuzz: $target $f (${FUZZ_TIME:-15s})"
		go test -run='^$' -fuzz="^$f\$" -fuzztime="${FUZZ_TIME:-15s}" "$target" >"$log.fuzz" 2>&1 ||
			{ fuzz_status=1; cat "$log.fuzz"; echo "fuzz: $target $f FAILED"; }
	done
done
rm -f "$log.fuzz"

# Last, so that the closing line is the count of the whole run.
report_status=0
go run ./scripts/testreport "$log" || report_status=$?

[ "$report_status" -eq 0 ] && [ "$fuzz_status" -eq 0 ]

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

# Node modules of the browser and JS SDK tests, installed once before the Go
# test packages (which run in parallel) use them.
(cd tests/e2e && npm ci --no-audit --no-fund --silent)

status=0
go test -count=1 -v -timeout 15m ./... >"$log" 2>&1 || status=$?
grep -E '^(=== RUN|    ---|---|ok|FAIL|PASS|panic)' "$log" | grep -v '^=== RUN' || true

fuzz_status=0
for target in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r dirname | sort -u); do
	for f in $(grep -h '^func Fuzz' "$target"/*_test.go | sed -E 's/func (Fuzz[A-Za-z0-9_]*).*/\1/'); do
		echo "fuzz: $target $f (${FUZZ_TIME:-15s})"
		go test -run='^$' -fuzz="^$f\$" -fuzztime="${FUZZ_TIME:-15s}" "$target" || fuzz_status=1
	done
done

passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
if [ "$skipped" -gt 0 ]; then
	echo "skipped tests (not allowed: every integration test must run):"
	grep -E -A2 '^\s*--- SKIP' "$log"
fi
if [ "$status" -ne 0 ]; then
	echo "go test failed; its output:"
	grep -vE '^(=== (RUN|PAUSE|CONT|NAME))' "$log" | tail -200
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$fuzz_status" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$failed" -eq 0 ]

# PocketBase v0.40 needs Go 1.27; the module proxy serves the toolchain.
export GOTOOLCHAIN := go1.27.3

.PHONY: run build test geo bench

# Starts the app on the embedded defaults at 127.0.0.1:8090.
run: geo
	go run . serve --http=127.0.0.1:8090

build: geo
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o pocketlytics .

# Installs and starts Redis, ClickHouse and Chromium when missing, then runs
# every test; fails if an integration test skipped.
test:
	bash scripts/test.sh

# Fetches the embedded country database (CC0) from the npm registry.
geo:
	bash scripts/geo.sh

bench:
	bash bench/bench.sh

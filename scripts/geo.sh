#!/usr/bin/env bash
# Fetches the country-level GeoIP database that the binary embeds: the CC0
# npm package @ip-location-db/geo-whois-asn-country-mmdb (about 8 MB, so it is
# fetched at build time and not committed). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.3.2026061719
dest=internal/enrich/geo/data/country.mmdb
[ -s "$dest" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@ip-location-db/geo-whois-asn-country-mmdb@$version" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/geo-whois-asn-country.mmdb
mkdir -p "$(dirname "$dest")"
mv "$tmp/package/geo-whois-asn-country.mmdb" "$dest"
echo "geo: fetched $dest" >&2

#!/usr/bin/env bash
# Rebuilds the embedded front-end (pb_public/t.js, index.html, assets/) from
# web/ with the locked npm packages. The output is committed; run this after
# changing anything under web/src. `--check` only verifies that the committed
# files match the sources.
set -euo pipefail
cd "$(dirname "$0")/../web"
npm ci --no-audit --no-fund --silent
node build.mjs "$@"

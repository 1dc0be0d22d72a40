#!/usr/bin/env bash
# The walkthrough's "Test it out" section against a running `wishctl dev` (or a deployed stack:
# URL=$(wishctl outputs --output json | jq -r .url) TOKEN=<an Auth0 token> ./curl-walkthrough.sh).
set -euo pipefail
URL=${URL:-http://127.0.0.1:3000/wish-list-service}
TOKEN=${TOKEN:-$(cargo run --quiet --release -p deploy -- token --sub walkthrough-user)}

echo "== GET is open"
curl -s -i "$URL"; echo

echo "== POST without a token: 401"
curl -s -i -H "Content-Type: application/json" -X POST \
  -d '{"name": "Failing Test Item", "description": "Failing Test Description", "url": "https://www.amazon.com"}' \
  "$URL"; echo

echo "== POST with a token: 201"
curl -s -i -H "Content-Type: application/json" -H "Authorization: Bearer $TOKEN" -X POST \
  -d '{"name": "Test Item 3", "description": "Test Description 3", "url": "https://www.amazon.com"}' \
  "$URL"; echo

echo "== the new item is listed"
curl -s "$URL"; echo

#!/usr/bin/env bash
# Property-based API test of `serve` against its own OpenAPI document (schemathesis from PyPI).
# Usage: scripts/schemathesis.sh [path-to-binary]   (default: target/debug/tiny-backspace)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/tiny-backspace}
[ -x "$bin" ] || cargo build --locked
# Pinned: a new release must not change what CI checks. Run from pip's own scripts directory, which
# a version manager's shims (pyenv) may not list until they are rebuilt.
python3 -m pip install -q "schemathesis==4.32.5"
st="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st"

work=$(mktemp -d)
token="schemathesis-$RANDOM-$RANDOM"
TB_HOME="$work/home" TB_CONFIG="$work/none.toml" TB_SERVER_TOKEN="$token" \
  "$bin" serve --addr 127.0.0.1:0 2> "$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$work/serve.log" | head -1 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/serve.log"; exit 1; }
# No model is configured: every accepted request ends quickly with an Error event, offline.
"$st" run "http://$addr/openapi.json" --max-examples 100 --seed 20261128 \
  -H "Authorization: Bearer $token"

#!/usr/bin/env bash
# Runs an example program against the local Atlas: starts local-atlas (TLS, moto behind the STS
# gate), exports its AWS environment (the IAM user's keys, the STS endpoint), MONGODB_URI and
# ROLE_ARN (the provisioned role, a database user with readWrite@test), runs
# `cargo run --example NAME`, and stops everything. Other variables pass through:
#
#   SESSION_SECONDS=6 REFRESH_BEFORE_SECONDS=2 PAUSE_SECONDS=3 bash examples/local.sh cached_client
#   bash examples/local.sh assume_role
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bash examples/local.sh cached_client|assume_role}
[ -f "examples/$name.rs" ] || { echo "no example examples/$name.rs" >&2; exit 2; }

bash .ci/setup --no-node >/dev/null
cargo build --quiet --locked -p atlas-iam-testkit --bin local-atlas
cargo build --quiet --locked --example "$name"

tmp=$(mktemp -d)
atlas_pid=
cleanup() {
  if [ -n "$atlas_pid" ]; then kill "$atlas_pid" 2>/dev/null || true; wait "$atlas_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

target/debug/local-atlas --tls >"$tmp/atlas.json" 2>"$tmp/atlas.log" &
atlas_pid=$!
for _ in $(seq 1 600); do
  [ -s "$tmp/atlas.json" ] && break
  kill -0 "$atlas_pid" 2>/dev/null || { cat "$tmp/atlas.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$tmp/atlas.json" ] || { echo "local-atlas did not start" >&2; exit 1; }

while IFS='=' read -r k v; do export "$k=$v"; done < <(.venv/bin/python -c "
import json; d=json.load(open('$tmp/atlas.json'))
for k, v in d['env'].items(): print(f'{k}={v}')
# idle connections close after a second, so that each invocation authenticates anew
print('MONGODB_URI=' + d['uri'] + '&maxIdleTimeMS=1000')
print('ROLE_ARN=' + d['role_arn'])")
export AWS_EC2_METADATA_DISABLED=true

cargo run --quiet --locked --example "$name"

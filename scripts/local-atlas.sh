# Sourced by scripts/demo.sh and examples/local.sh: starts target/debug/local-atlas (TLS, moto
# behind the STS gate), stops it when the shell exits, and exports what a client needs: the IAM
# user's keys and the STS endpoint (as a shell would have them), AWS_EC2_METADATA_DISABLED,
# LOCAL_ATLAS_URI, LOCAL_ATLAS_ROLE and LOCAL_ATLAS_ADDR. Needs .venv (bash .ci/setup).
# LOCAL_ATLAS_ARGS adds flags to local-atlas (the demo's --admin: the Admin API stand-in, whose
# MONGODB_ATLAS_* variables are exported too).

local_atlas_tmp=$(mktemp -d)
local_atlas_pid=
local_atlas_stop() {
  if [ -n "$local_atlas_pid" ]; then
    kill "$local_atlas_pid" 2>/dev/null || true
    wait "$local_atlas_pid" 2>/dev/null || true
  fi
  rm -rf "$local_atlas_tmp"
}
trap local_atlas_stop EXIT

target/debug/local-atlas --tls ${LOCAL_ATLAS_ARGS:-} >"$local_atlas_tmp/atlas.json" 2>"$local_atlas_tmp/atlas.log" &
local_atlas_pid=$!
for _ in $(seq 1 600); do
  [ -s "$local_atlas_tmp/atlas.json" ] && break
  kill -0 "$local_atlas_pid" 2>/dev/null || { cat "$local_atlas_tmp/atlas.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$local_atlas_tmp/atlas.json" ] || { echo "local-atlas did not start" >&2; exit 1; }

while IFS='=' read -r k v; do export "$k=$v"; done < <(.venv/bin/python -c "
import json; d=json.load(open('$local_atlas_tmp/atlas.json'))
for k, v in d['env'].items(): print(f'{k}={v}')
print('LOCAL_ATLAS_URI=' + d['uri'])
print('LOCAL_ATLAS_ROLE=' + d['role_arn'])
print('LOCAL_ATLAS_ADDR=%s:%s' % (d['host'], d['port']))")
export AWS_EC2_METADATA_DISABLED=true

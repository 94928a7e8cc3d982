#!/usr/bin/env bash
# The demo: builds atlas-iam and local-atlas, starts a local Atlas (TLS) with moto (STS and IAM)
# behind it, runs atlas-iam against it, shows failing cases with their diagnoses, and stops
# everything.
# Needs Rust and Python 3 only.
set -euo pipefail
cd "$(dirname "$0")/.."

bold() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

bash .ci/setup --no-node >/dev/null
echo "building (the first build of the AWS SDK and the MongoDB driver takes a few minutes)..."
cargo build --workspace --quiet

# with the Atlas Admin API stand-in for the project (--atlas reads it)
LOCAL_ATLAS_ARGS=--admin
# shellcheck source=scripts/local-atlas.sh
. scripts/local-atlas.sh
export NO_COLOR=${NO_COLOR:-}
ROLE=$LOCAL_ATLAS_ROLE
URI=$LOCAL_ATLAS_URI
echo "local Atlas on $LOCAL_ATLAS_ADDR (TLS), STS at $AWS_ENDPOINT_URL_STS, role $ROLE"

bin=target/debug/atlas-iam
bold "atlas-iam whoami"
$bin whoami
bold "atlas-iam whoami --role-arn $ROLE"
$bin whoami --role-arn "$ROLE"
bold "atlas-iam ping --uri \"\$URI\" --role-arn $ROLE"
$bin ping --uri "$URI" --role-arn "$ROLE"
bold "atlas-iam roundtrip --uri \"\$URI\" --role-arn $ROLE --count 5"
$bin roundtrip --uri "$URI" --role-arn "$ROLE" --count 5
bold "atlas-iam uri --cluster cluster0.ab12c.mongodb.net --db orders"
$bin uri --cluster cluster0.ab12c.mongodb.net --db orders 2>/dev/null
bold "eval \"\$(atlas-iam assume --role-arn $ROLE)\" && atlas-iam whoami --format json"
( eval "$($bin assume --role-arn "$ROLE" 2>/dev/null)" && $bin whoami --format json | .venv/bin/python -c "
import json,sys; r=json.load(sys.stdin); print(json.dumps({k: r[k] for k in ('ok','exit_code','credentials','identity')}, indent=2))" )

echo
echo "--- and when it fails ---"
bold "atlas-iam ping --uri \"\$URI\"      (as the IAM user, which is no database user: Atlas says only 'Authentication failed.')"
$bin ping --uri "$URI" || echo "(exit $?)"
bold "atlas-iam ping --uri \"\$URI\" --atlas      (the same, with the Atlas Admin API: what the project has registered)"
$bin ping --uri "$URI" --atlas || echo "(exit $?)"
bold "AWS_SECRET_ACCESS_KEY=<one character off> atlas-iam whoami"
first=A; [ "${AWS_SECRET_ACCESS_KEY:0:1}" = A ] && first=B   # certainly a different character
AWS_SECRET_ACCESS_KEY="$first${AWS_SECRET_ACCESS_KEY:1}" $bin whoami || echo "(exit $?)"
bold "atlas-iam assume --role-arn arn:aws:iam::123456789012:role/no-such-role"
$bin assume --role-arn arn:aws:iam::123456789012:role/no-such-role || echo "(exit $?)"
bold "atlas-iam uri --uri 'mongodb+srv://AKIAIOSFODNN7EXAMPLE:abc+def@cluster0.ab12c.mongodb.net/?authMechanism=MONGODB-AWS'"
$bin uri --uri 'mongodb+srv://AKIAIOSFODNN7EXAMPLE:abc+def@cluster0.ab12c.mongodb.net/?authMechanism=MONGODB-AWS' || echo "(exit $?)"
echo
echo "demo done: local-atlas and moto stopped."

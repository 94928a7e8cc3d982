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

# shellcheck source=scripts/local-atlas.sh
. scripts/local-atlas.sh
# idle connections close after a second, so that each invocation authenticates anew
export MONGODB_URI="$LOCAL_ATLAS_URI&maxIdleTimeMS=1000" ROLE_ARN=$LOCAL_ATLAS_ROLE

cargo run --quiet --locked --example "$name"

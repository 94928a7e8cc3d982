#!/usr/bin/env bash
# The tests in one command on a fresh machine: installs what they need (.ci/setup: moto and
# pymongo into .venv, the Node driver into node_modules, Debian's faketime), then runs them.
# Extra arguments go to `cargo test` (e.g. `bash scripts/test.sh --test integration probe::`: one area of the one integration binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
exec cargo test --workspace --locked "$@"

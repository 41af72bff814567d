#!/usr/bin/env bash
# Runs every test of astropipe: the Rust unit and integration tests (which start the real
# server on 127.0.0.1:0). Installs nothing system-wide; builds in debug mode.
#
#   ./tests/run-all.sh            # all tests
#   ./tests/run-all.sh NAME       # only tests whose name contains NAME
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/astropipe-target}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
cargo test --workspace --all-targets -- "$@"

#!/usr/bin/env bash
# Cone search, astropipe vs PostgreSQL 15 + q3c, side by side in one run (see
# benches/cone_vs_q3c.py for what is timed and how).
#
# Usage: benches/cone_vs_q3c.sh DATADIR [--hats DIR]... [--seconds 60] [--single-seconds 10]
#   DATADIR: ../shared/tools/make_catalog.py's output plus benches/make_hats.py's hats/.
#   Without --hats, both layouts are served: hats-import's (DATADIR/hats/cat) and ours
#   (DATADIR/hats/cat_ours: the same partitions rewritten by `rewrite_hats`, made once).
# Installs (apt-get, as root) postgresql-15, postgresql-15-q3c; builds astropipe and the load
# client (`http_load`) in release unless ASTROPIPE_BIN / HTTP_LOAD_BIN name them; uses the test
# venv's Python (pyarrow, the ADBC Flight SQL driver): ASTROPIPE_BENCH_PYTHON, default
# /var/tmp/astropipe-venv/bin/python (tests/run-all.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,10p "$0"; exit 2; }

if ! dpkg -s postgresql-15-q3c >/dev/null 2>&1 || ! command -v pgbench >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 postgresql-15-q3c postgresql-client-15 >/dev/null
fi
PY=${ASTROPIPE_BENCH_PYTHON:-/var/tmp/astropipe-venv/bin/python}
"$PY" -c "import pyarrow, adbc_driver_flightsql" || { echo "needs $PY with pyarrow and adbc_driver_flightsql (run tests/run-all.sh once)"; exit 2; }

TARGET=${CARGO_TARGET_DIR:-target}
BIN=${ASTROPIPE_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release --bin astropipe -q
    BIN="$TARGET/release/astropipe"
fi
bench_bin() {  # the executable of bench target $1, built in release
    cargo bench --bench "$1" --no-run --message-format=json -q 2>/dev/null \
        | "$PY" -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
LOAD=${HTTP_LOAD_BIN:-}
[ -n "$LOAD" ] || LOAD=$(bench_bin http_load)
# Our layout of the same rows: hats-import's partitions rewritten as our compaction writes them.
HATS=()
if [[ " ${*:2} " != *" --hats "* ]]; then
    if [ ! -d "$1/hats/cat_ours" ]; then
        "$(bench_bin rewrite_hats)" --bench "$1/hats/cat" "$1/hats/cat_ours.tmp"
        mv "$1/hats/cat_ours.tmp" "$1/hats/cat_ours"
    fi
    HATS=(--hats "$1/hats/cat" --hats "$1/hats/cat_ours")
fi
exec "$PY" benches/cone_vs_q3c.py "$1" --astropipe "$BIN" --load-bin "$LOAD" "${HATS[@]}" "${@:2}"

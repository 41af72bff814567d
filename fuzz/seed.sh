#!/usr/bin/env bash
# Seeds a fuzz corpus and runs one target.
#   fuzz/seed.sh [TARGET] [RUNS]     TARGET: fits_reader (default), adql, sql_plan;
#                                    RUNS: executions (default 1,000,000)
#   - fits_reader: the FITS reader (headers, every decoder, WCS), seeded with the sample files;
#   - adql: the ADQL translator and the statement checks, seeded with ADQL queries;
#   - sql_plan: the SQL entry (checks, parse, plan, read-only guard) against the catalog's
#     tables, seeded with sql/examples.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); stable Rust works with `-s none`.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:-fits_reader}"
runs="${2:-1000000}"
corpus="corpus/$target"
mkdir -p "$corpus"
case "$target" in
  fits_reader)
    find ../tests/data -name '*.fits' -o -name '*.fit.gz' -o -name '*.hdr' | while read -r f; do
      cp "$f" "$corpus/$(basename "$f")"
    done
    max_len=600000 ;;
  adql)
    i=0
    for q in \
      "SELECT TOP 10 source_id, ra, dec FROM sources WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150.0, 2.2, 0.05)) = 1" \
      "SELECT DISTANCE(POINT(ra, dec), POINT(1, 2)) AS d, COORD1(POINT(ra, dec)) FROM s WHERE 1 = INTERSECTS(POLYGON(1,1,2,1,2,2), POINT(ra, dec))" \
      "SELECT LOG(flux), MOD(npix, 2), CEILING(x) FROM s WHERE BOX('ICRS', 1, 2, 3, 4) IS NOT NULL OFFSET 3" \
      "SELECT TOP 2 * FROM (SELECT TOP 10 ra FROM sources) AS s ORDER BY 1"; do
      printf '%s' "$q" > "$corpus/seed$i.adql"; i=$((i + 1))
    done
    max_len=4096 ;;
  sql_plan)
    cp ../sql/examples/*.sql "$corpus/"
    max_len=4096 ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$target" "$corpus" -- \
  -runs="$runs" -max_len="$max_len" -rss_limit_mb=4096 -timeout=20

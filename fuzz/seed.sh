#!/usr/bin/env bash
# Seeds the fuzz corpus with the sample files, then runs the reader target.
#   fuzz/seed.sh [RUNS]          (default 1,000,000 executions)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); stable Rust works with `-s none`.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/fits_reader
find ../tests/data -name '*.fits' -o -name '*.fit.gz' -o -name '*.hdr' | while read -r f; do
  cp "$f" "corpus/fits_reader/$(basename "$f")"
done
RUSTC_BOOTSTRAP=1 cargo fuzz run -s none fits_reader corpus/fits_reader -- \
  -runs="${1:-1000000}" -max_len=600000 -rss_limit_mb=4096 -timeout=20

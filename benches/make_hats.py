#!/usr/bin/env python3
"""Builds the HATS inputs of the query benches with LSDB (as astronomers make them).

Usage: make_hats.py DATADIR [--partition-rows 100000]
DATADIR holds make_catalog.py's output (../shared/tools/make_catalog.py: 10 M rows uniform on
the sphere). Writes, next to it:
  DATADIR/hats/cat       the 10 M rows as a HATS collection (with a 10" margin cache)
  DATADIR/hats/xa, xb    the cross-match pair of bench_catalog.py: xa = the first 1 M rows of
                         catalog_unsorted.parquet; xb = 500 k of them jittered by N(0, 0.3")
                         per axis plus 500 k unrelated rows (rows 1 M..1.5 M), shuffled —
                         the same draws (seed 99) bench_catalog.py makes, also written as
                         DATADIR/xmatch_a.parquet, xmatch_b.parquet for the astropy reference.
Run with the test venv (tests/run-all.sh makes it; it has LSDB). Skips what exists.
"""
import argparse
import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import lsdb


def to_hats(df, out, name, partition_rows):
    if os.path.exists(os.path.join(out, "collection.properties")):
        return
    t0 = time.perf_counter()
    cat = lsdb.from_dataframe(df, catalog_name=name, ra_column="ra", dec_column="dec",
                              lowest_order=0, highest_order=10, partition_rows=partition_rows,
                              margin_threshold=10.0)
    cat.to_hats(out, catalog_name=name)
    print(f"{name}: {len(df)} rows, {len(cat.get_healpix_pixels())} partitions, "
          f"{time.perf_counter() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datadir")
    ap.add_argument("--partition-rows", type=int, default=100_000)
    a = ap.parse_args()
    d = a.datadir
    hats = os.path.join(d, "hats")
    os.makedirs(hats, exist_ok=True)
    t = pq.read_table(os.path.join(d, "catalog_unsorted.parquet"))
    n = 1_000_000
    ra = t["ra"].to_numpy()
    dec = t["dec"].to_numpy()
    ra1, dec1 = ra[:n], dec[:n]
    rng = np.random.default_rng(99)
    jit = 0.3 / 3600
    ra2 = np.r_[ra1[: n // 2] + rng.normal(0, jit, n // 2) / np.cos(np.radians(dec1[: n // 2])),
                ra[n:n + n // 2]] % 360
    dec2 = np.clip(np.r_[dec1[: n // 2] + rng.normal(0, jit, n // 2), dec[n:n + n // 2]], -90, 90)
    perm = rng.permutation(n)
    ra2, dec2 = ra2[perm], dec2[perm]
    xa = pd.DataFrame({"id": np.arange(n, dtype=np.int64), "ra": ra1, "dec": dec1})
    xb = pd.DataFrame({"id": np.arange(n, dtype=np.int64), "ra": ra2, "dec": dec2})
    pq.write_table(pa.Table.from_pandas(xa, preserve_index=False), os.path.join(d, "xmatch_a.parquet"))
    pq.write_table(pa.Table.from_pandas(xb, preserve_index=False), os.path.join(d, "xmatch_b.parquet"))
    to_hats(xa, os.path.join(hats, "xa"), "xa", a.partition_rows)
    to_hats(xb, os.path.join(hats, "xb"), "xb", a.partition_rows)
    df = t.select(["id", "ra", "dec", "mag", "flux"]).to_pandas()
    del t
    to_hats(df, os.path.join(hats, "cat"), "cat", a.partition_rows)


if __name__ == "__main__":
    main()

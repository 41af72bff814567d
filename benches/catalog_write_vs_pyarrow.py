#!/usr/bin/env python3
"""astropipe's catalog Parquet writer vs pyarrow.parquet.write_table, same rows, same run.

    python benches/catalog_write_vs_pyarrow.py [--rows 10000000] [--reps 3] [--dir DIR] [--bench-bin PATH]

Needs pyarrow (e.g. the test venv /var/tmp/astropipe-venv or ../shared/tools/pyref-setup.sh's)
and cargo; runs `cargo bench --bench catalog_write` (release profile; set CARGO_TARGET_DIR to
reuse a release build). Both writers get the same N `sources` rows sorted by _healpix_29, in
memory, and write one Parquet file to the same disk with the same settings: ZSTD level 1,
65536-row row groups, statistics with page indexes, dictionary encoding on. Medians of --reps;
the ratio is astropipe / pyarrow (below 1 = astropipe faster).
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

import pyarrow as pa
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--bench-bin", default=None,
                    help="a built catalog_write bench binary (default: build it with cargo bench)")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="astropipe-write-bench-", dir="/var/tmp")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["--bench", "--dir", d, "--rows", str(a.rows), "--reps", str(a.reps)]
    cmd = [a.bench_bin] + args if a.bench_bin else ["cargo", "bench", "-q", "--bench", "catalog_write", "--"] + args
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True)
    ours = json.loads(out.stdout.strip().splitlines()[-1])

    table = pa.ipc.open_file(pa.memory_map(ours["ipc"])).read_all()
    table = table.combine_chunks()  # in memory, like ours
    assert table.num_rows == a.rows
    target = os.path.join(d, "pyarrow.parquet")
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        pq.write_table(table, target, compression="zstd", compression_level=1,
                       row_group_size=65536, write_statistics=True, write_page_index=True,
                       use_dictionary=True)
        times.append(time.perf_counter() - t0)
    t_py = statistics.median(times)
    # Both files hold the same rows.
    n_ours = pq.read_metadata(os.path.join(d, "astropipe.parquet")).num_rows
    assert n_ours == a.rows, n_ours
    res = {
        "rows": a.rows,
        "threads": ours["threads"],
        "pyarrow": pa.__version__,
        "pyarrow_s": round(t_py, 3),
        "astropipe_parallel_s": round(ours["parallel_s"], 3),
        "astropipe_serial_s": round(ours["serial_s"], 3),
        "ratio_parallel": round(ours["parallel_s"] / t_py, 3),
        "ratio_serial": round(ours["serial_s"] / t_py, 3),
        "bytes_astropipe": ours["bytes"],
        "bytes_pyarrow": os.path.getsize(target),
    }
    print(json.dumps(res, indent=2))
    if not a.dir:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()

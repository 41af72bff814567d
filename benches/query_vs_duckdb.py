#!/usr/bin/env python3
"""Query benches against the references, in one run, printing ratios (< 1 means astropipe is
faster):

  - 1' and 1 deg cones on the 10 M-row catalog, end to end over HTTP (astropipe `serve
    --table cat=HATS`, Arrow IPC response decoded by the client) vs DuckDB in-process on the
    HEALPix-sorted Parquet with a HEALPix pre-filter (bench_catalog.py's fastest variant; its
    cover is computed outside the timing, as there);
  - `xmatch('xa', 'xb', 1.0)` (1 M x 1 M at 1") over HTTP vs astropy `search_around_sky`
    (SkyCoord construction outside the timing, as in bench_catalog.py);
  - optionally sustained cone load (`--load-seconds`) with the Rust load generator
    `cargo bench --bench http_load`, reporting queries/s, p50/p99 and the server's RSS.

Every pair of answers is checked equal before timing. Usage (pyref venv: DuckDB, astropy):
  python benches/query_vs_duckdb.py DATADIR --astropipe target/release/astropipe
      [--reps 5] [--load-seconds 60 --load-bin PATH --connections 32]
DATADIR: make_catalog.py's output plus benches/make_hats.py's hats/ and xmatch_*.parquet.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import requests

from bench_common import free_port

RA0, DEC0 = 150.0, 2.2


def timed(fn, reps):
    fn()  # warm-up
    ws = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ws.append(time.perf_counter() - t0)
    return statistics.median(ws), ws, out


def hav_sql(ra0, dec0, r):
    return (f"2*asin(sqrt(pow(sin((radians(dec)-radians({dec0}))/2),2) + cos(radians(dec))*cos(radians({dec0}))"
            f"*pow(sin((radians(ra)-radians({ra0}))/2),2))) < radians({r})")


def hpx_where(ra0, dec0, r):
    from astropy_healpix import HEALPix
    import astropy.units as u
    hp = HEALPix(nside=1024, order="nested")
    pix = np.unique(hp.cone_search_lonlat(ra0 * u.deg, dec0 * u.deg, r * u.deg))
    breaks = np.where(np.diff(pix) != 1)[0]
    starts = np.r_[pix[0], pix[breaks + 1]]
    ends = np.r_[pix[breaks], pix[-1]]
    ors = " OR ".join(f"hpx10 BETWEEN {a} AND {b}" for a, b in zip(starts, ends))
    return f"hpx10 BETWEEN {starts[0]} AND {ends[-1]} AND ({ors})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datadir")
    ap.add_argument("--astropipe", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--load-seconds", type=int, default=0)
    ap.add_argument("--load-bin")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--skip-xmatch", action="store_true")
    a = ap.parse_args()
    d = a.datadir
    R = {"loadavg_start": os.getloadavg()}

    port = free_port()
    empty = tempfile.mkdtemp(prefix="astropipe-bench-")
    env = dict(os.environ, RUST_LOG="warn")
    cmd = [a.astropipe, "serve", "--catalog", empty, "--addr", f"127.0.0.1:{port}",
           "--table", f"cat={d}/hats/cat", "--table", f"xa={d}/hats/xa",
           "--table", f"xb={d}/hats/xb", "--row-limit", "10000000",
           "--query-timeout-seconds", "600", "--query-memory-mb", "8192"]
    server = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    try:
        for _ in range(600):
            try:
                if session.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            sys.exit("astropipe did not become ready")

        # One keep-alive connection with the standard library's client (requests adds ~2 ms
        # of its own per call, which would be measuring Python, not the service).
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def ap_query(sql):
            conn.request("POST", "/v1/sql", body=sql.encode(),
                         headers={"Accept": "application/vnd.apache.arrow.stream"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"{r.status}: {body[:500]!r}")
            return pa.ipc.open_stream(body).read_all()

        import duckdb
        con = duckdb.connect()
        S = os.path.join(d, "catalog_hpx_sorted.parquet")
        ra1, dec1 = con.execute(
            f"SELECT ra, dec FROM read_parquet('{S}') WHERE dec BETWEEN 1 AND 3 AND ra BETWEEN 149.2 AND 151.2 "
            f"ORDER BY pow(ra-150.2,2)+pow(dec-2.0,2) LIMIT 1").fetchone()
        R["duckdb"] = duckdb.__version__
        for label, r, ra0, dec0 in [("cone_1arcmin", 1 / 60, RA0, DEC0),
                                    ("cone_1arcmin_onsrc", 1 / 60, ra1, dec1),
                                    ("cone_1deg", 1.0, RA0, DEC0)]:
            dq = (f"SELECT id, ra, dec, mag FROM read_parquet('{S}') WHERE {hpx_where(ra0, dec0, r)} "
                  f"AND {hav_sql(ra0, dec0, r)}")
            aq = f"SELECT id, ra, dec, mag FROM cat WHERE cone_contains(ra, dec, {ra0!r}, {dec0!r}, {r!r})"
            d_med, d_all, d_rows = timed(lambda: con.execute(dq).fetchall(), a.reps)
            a_med, a_all, a_tab = timed(lambda: ap_query(aq), a.reps)
            ids_d = sorted(row[0] for row in d_rows)
            ids_a = sorted(a_tab.column("id").to_pylist())
            assert ids_d == ids_a, f"{label}: astropipe {len(ids_a)} rows, DuckDB {len(ids_d)}"
            R[label] = dict(rows=len(ids_a), astropipe_http_s=a_med, duckdb_s=d_med,
                            ratio=a_med / d_med, astropipe_all=a_all, duckdb_all=d_all)
            print(f"{label}: {len(ids_a)} rows; astropipe over HTTP {a_med*1e3:.2f} ms, "
                  f"DuckDB prefiltered {d_med*1e3:.2f} ms -> ratio {a_med/d_med:.3f}", flush=True)

        if not a.skip_xmatch:
            import astropy.units as u
            from astropy.coordinates import SkyCoord, search_around_sky
            import pyarrow.parquet as pq
            ta = pq.read_table(os.path.join(d, "xmatch_a.parquet"))
            tb = pq.read_table(os.path.join(d, "xmatch_b.parquet"))
            c1 = SkyCoord(ta["ra"].to_numpy() * u.deg, ta["dec"].to_numpy() * u.deg)
            c2 = SkyCoord(tb["ra"].to_numpy() * u.deg, tb["dec"].to_numpy() * u.deg)
            reps = min(a.reps, 3)
            p_med, p_all, p_out = timed(lambda: search_around_sky(c1, c2, 1 * u.arcsec), reps)
            n_py = int(len(p_out[0]))
            x_med, x_all, x_tab = timed(
                lambda: ap_query("SELECT count(*) AS n FROM xmatch('xa', 'xb', 1.0)"), reps)
            n_ap = int(x_tab.column("n")[0].as_py())
            assert n_ap == n_py, f"xmatch pairs: astropipe {n_ap}, astropy {n_py}"
            R["xmatch_1Mx1M_1arcsec"] = dict(pairs=n_ap, astropipe_http_s=x_med, astropy_s=p_med,
                                             ratio=x_med / p_med, astropipe_all=x_all,
                                             astropy_all=p_all)
            print(f"xmatch 1M x 1M at 1\": {n_ap} pairs; astropipe over HTTP {x_med:.3f} s, "
                  f"astropy search_around_sky {p_med:.3f} s -> ratio {x_med/p_med:.3f}", flush=True)

        if a.load_seconds:
            out = subprocess.run(
                [a.load_bin, "--bench", "--url", base, "--seconds", str(a.load_seconds),
                 "--connections", str(a.connections), "--server-pid", str(server.pid)],
                capture_output=True, text=True, check=True)
            load = json.loads(out.stdout.strip().splitlines()[-1])
            R["http_load"] = load
            print(f"load: {load['qps']:.0f} cone queries/s over {load['seconds']} s with "
                  f"{load['connections']} connections; p50 {load['p50_ms']:.2f} ms, "
                  f"p99 {load['p99_ms']:.2f} ms; errors {load['errors']}; server RSS "
                  f"{load['rss_mb_first']:.0f} -> {load['rss_mb_last']:.0f} MiB "
                  f"(max {load['rss_mb_max']:.0f})", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    R["loadavg_end"] = os.getloadavg()
    print(json.dumps(R, default=str))


if __name__ == "__main__":
    main()

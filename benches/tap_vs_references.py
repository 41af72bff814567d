#!/usr/bin/env python3
"""TAP benches, each next to its reference in the same run (ratios < 1: astropipe faster):

  - upload cross-match: 10 000 positions (5 000 near catalog rows, 5 000 random) uploaded as
    a VOTable to /tap/sync and joined with the 10 M-row catalog at 2" through ADQL
    (CONTAINS(POINT, CIRCLE) with the upload's columns), vs the same match as
    `xmatch('up', 'cat', 2.0)` of the positions served as a table, vs astropy
    `search_around_sky` on the same positions and the 10 M catalog (SkyCoord built outside
    the timing). Every answer has the same pairs.
  - formats: TAP sync of 1 M rows x 10 columns as VOTable BINARY2, VOTable TABLEDATA and
    Parquet: time to receive, and to parse with astropy (what pyvo does) / pyarrow.

Usage (the test venv has pyvo, astropy, pyarrow):
  python benches/tap_vs_references.py DATADIR --astropipe target/release/astropipe [--reps 5]
DATADIR: make_catalog.py's output plus benches/make_hats.py's hats/.
"""
import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench_common import free_port


def timed(fn, reps):
    fn()
    ws = []
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ws.append(time.perf_counter() - t0)
    return statistics.median(ws), out


def post(url, data, content_type):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def multipart(fields, files):
    boundary = "astropipe-bench-boundary"
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode())
    for k, v in files.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{k}.xml\"\r\n"
                  "Content-Type: application/x-votable+xml\r\n\r\n".encode())
        out.write(v)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def votable(ids, ra, dec):
    from astropy.table import Table
    buf = io.BytesIO()
    Table({"id": ids, "ra": ra, "dec": dec}).write(buf, format="votable")
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datadir")
    ap.add_argument("--astropipe", required=True)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    d = a.datadir
    R = {"loadavg_start": os.getloadavg()}
    # The upload: 5 000 positions 0.5" from catalog rows, 5 000 random.
    cat = pq.read_table(os.path.join(d, "catalog_unsorted.parquet"), columns=["id", "ra", "dec"])
    rng = np.random.default_rng(7)
    pick = rng.choice(len(cat), 5000, replace=False)
    ra = np.concatenate([cat["ra"].to_numpy()[pick], rng.uniform(0, 360, 5000)])
    dec = np.concatenate([cat["dec"].to_numpy()[pick] + 0.5 / 3600,
                          np.degrees(np.arcsin(rng.uniform(-1, 1, 5000)))])
    ids = np.arange(10000, dtype=np.int64)
    vot = votable(ids, ra, dec)
    tmp = tempfile.mkdtemp(prefix="astropipe-tapbench-")
    # The same positions as a table xmatch can read (it needs the HATS index column).
    from hats.pixel_math.spatial_index import compute_spatial_index
    pq.write_table(pa.table({"id": ids, "ra": ra, "dec": dec,
                             "_healpix_29": compute_spatial_index(ra, dec)}),
                   os.path.join(tmp, "up.parquet"))

    port = free_port()
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    cmd = [a.astropipe, "serve", "--catalog", empty, "--addr", f"127.0.0.1:{port}",
           "--table", f"cat={d}/hats/cat", "--table", f"up={tmp}/up.parquet",
           "--row-limit", "10000000", "--query-timeout-seconds", "600",
           "--query-memory-mb", "8192", "--result-mb", "4096"]
    server = subprocess.Popen(cmd, env=dict(os.environ, RUST_LOG="warn"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if urllib.request.urlopen(base + "/readyz", timeout=1).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            sys.exit("astropipe did not become ready")

        adql = ("SELECT u.id, s.id AS cat_id FROM TAP_UPLOAD.up AS u JOIN cat AS s ON "
                "1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 2.0/3600))")
        body, ct = multipart({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql,
                              "UPLOAD": "up,param:up", "RESPONSEFORMAT": "parquet",
                              "MAXREC": "10000000"}, {"up": vot})

        def upload_match():
            return pq.read_table(io.BytesIO(post(base + "/tap/sync", body, ct)))

        u_med, u_tab = timed(upload_match, a.reps)
        pairs_u = sorted(zip(u_tab["id"].to_pylist(), u_tab["cat_id"].to_pylist()))

        def xmatch():
            q = "SELECT id_up AS id, id_cat AS cat_id FROM xmatch('up', 'cat', 2.0)"
            return pq.read_table(io.BytesIO(post(base + "/v1/sql?format=parquet", q.encode(), "text/plain")))

        x_med, x_tab = timed(xmatch, a.reps)
        pairs_x = sorted(zip(x_tab["id"].to_pylist(), x_tab["cat_id"].to_pylist()))
        assert pairs_u == pairs_x, f"upload join {len(pairs_u)} pairs, xmatch {len(pairs_x)}"

        import astropy.units as u
        from astropy.coordinates import SkyCoord, search_around_sky
        c1 = SkyCoord(ra * u.deg, dec * u.deg)
        c2 = SkyCoord(cat["ra"].to_numpy() * u.deg, cat["dec"].to_numpy() * u.deg)
        p_med, p_out = timed(lambda: search_around_sky(c1, c2, 2 * u.arcsec), min(a.reps, 3))
        cat_ids = cat["id"].to_numpy()
        pairs_p = sorted(zip(ids[p_out[0]].tolist(), cat_ids[p_out[1]].tolist()))
        assert pairs_u == pairs_p, f"upload join {len(pairs_u)} pairs, astropy {len(pairs_p)}"
        R["upload_xmatch_10k_x_10M_2arcsec"] = dict(
            pairs=len(pairs_u), tap_upload_s=u_med, xmatch_s=x_med, astropy_s=p_med,
            ratio_vs_xmatch=u_med / x_med, ratio_vs_astropy=u_med / p_med)
        print(f"upload 10k x 10M at 2\": {len(pairs_u)} pairs; TAP upload join {u_med:.3f} s, "
              f"xmatch {x_med:.3f} s (ratio {u_med/x_med:.2f}), astropy {p_med:.3f} s "
              f"(ratio {u_med/p_med:.3f})", flush=True)

        # Formats: 1 M rows x 10 columns.
        # (make_hats.py's catalog holds id, ra, dec and the HATS columns; ten columns of
        # mixed kinds are made from them.)
        q = ("SELECT TOP 1000000 id, ra, dec, _healpix_29 AS hpx, ra + dec AS rd, ra - dec AS rmd, "
             "dec * 2 AS dec2, id % 7 AS k, SIN(RADIANS(ra)) AS sra, COS(RADIANS(dec)) AS cdec FROM cat")
        from astropy.io.votable import parse_single_table

        def fetch(fmt):
            data = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q,
                                           "RESPONSEFORMAT": fmt, "MAXREC": "1000000"}).encode()
            return post(base + "/tap/sync", data, "application/x-www-form-urlencoded")

        fm = {}
        for fmt, parse in [("votable/b2", lambda b: parse_single_table(io.BytesIO(b)).to_table()),
                           ("votable", lambda b: parse_single_table(io.BytesIO(b)).to_table()),
                           ("parquet", lambda b: pq.read_table(io.BytesIO(b)))]:
            reps = min(a.reps, 3)
            f_med, raw = timed(lambda: fetch(fmt), reps)
            p_med2, t = timed(lambda: parse(raw), reps)
            assert len(t) == 1000000, f"{fmt}: {len(t)} rows"
            # The stream as a C client receives it (curl to /dev/null): Python's own reading
            # of 100+ MB is a floor of its own under the figures above.
            form = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": q,
                                           "RESPONSEFORMAT": fmt, "MAXREC": "1000000"})
            c_med, _ = timed(lambda: subprocess.run(
                ["curl", "-s", "-o", os.devnull, "--data-binary", form, base + "/tap/sync"],
                check=True), reps)
            fm[fmt] = dict(bytes=len(raw), receive_s=f_med, curl_s=c_med, parse_s=p_med2)
            print(f"{fmt}: {len(raw)/1e6:.1f} MB, received in {f_med:.2f} s (curl {c_med:.2f} s), "
                  f"parsed in {p_med2:.2f} s", flush=True)
        fm["binary2_vs_tabledata_receive"] = fm["votable"]["receive_s"] / fm["votable/b2"]["receive_s"]
        fm["binary2_vs_tabledata_curl"] = fm["votable"]["curl_s"] / fm["votable/b2"]["curl_s"]
        fm["binary2_vs_tabledata_parse"] = fm["votable"]["parse_s"] / fm["votable/b2"]["parse_s"]
        print(f"BINARY2 streams {fm['binary2_vs_tabledata_curl']:.1f}x faster than TABLEDATA to curl "
              f"({fm['binary2_vs_tabledata_receive']:.1f}x to Python), "
              f"and astropy parses it {fm['binary2_vs_tabledata_parse']:.1f}x faster", flush=True)
        R["formats_1M_x_10"] = fm
    finally:
        server.terminate()
        server.wait(timeout=30)
    R["loadavg_end"] = os.getloadavg()
    print(json.dumps(R, default=str))


if __name__ == "__main__":
    main()

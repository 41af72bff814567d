#!/usr/bin/env python3
"""Cone searches, astropipe next to PostgreSQL + q3c, in one run (benches/cone_vs_q3c.sh
installs PostgreSQL and q3c, then runs this). Ratios are astropipe / q3c: < 1 means astropipe
is faster (latency) — for throughput, > 1 means astropipe serves more.

Both serve the same 10 M rows (make_catalog.py's catalog_unsorted.parquet; astropipe reads
it as the HATS catalog benches/make_hats.py wrote, or any `--hats DIR` given), both warm:

  1. one client, a 1' and a 1 deg cone on a catalog source, for --single-seconds: `count(*)`
     through q3c with pgbench -M prepared (a C client; prepared statement) vs astropipe's HTTP
     SQL (the Rust client `http_load`, one connection) and Flight SQL prepared statements,
     from a native client (`http_load --flight`, arrow-flight's Rust client: bind with DoPut,
     GetFlightInfo, DoGet — the counterpart of pgbench) and from the ADBC driver (Python over
     Go); and the rows (`id, ra, dec, mag`) through q3c vs astropipe's
     /scs (VERB=1: id, ra, dec and the distance, as a VOTable; `http_load --scs`);
  2. random 1' cones uniform on the sphere, `SELECT id, ra, dec, mag`, 16 connections for
     --seconds: pgbench -M prepared -c 16 vs http_load -c 16 (HTTP SQL);
  q/s, p50, p99 and both servers' memory (astropipe RSS; PostgreSQL: the sum of its
  processes' PSS, so shared buffers count once).

The PostgreSQL cluster is made in --pg-dir (127.0.0.1, a free port) and kept there, loaded
and clustered on q3c, for the next run; delete the directory to start again.

Usage: python benches/cone_vs_q3c.py DATADIR --astropipe PATH --load-bin PATH
           [--hats DIR]... [--seconds 60] [--single-seconds 10] [--pg-dir /var/tmp/q3c-bench]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench_common import free_port

PG_BIN = "/usr/lib/postgresql/15/bin"
ARCMIN = 1.0 / 60.0


def as_postgres(args, **kw):
    """Runs a PostgreSQL server binary as the postgres user (they refuse root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, check=True, **kw)


class Postgres:
    def __init__(self, pgdir, port):
        self.dir, self.port = pgdir, port
        self.data = os.path.join(pgdir, "data")

    def psql(self, sql, quiet=True):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start(self):
        fresh = not os.path.exists(os.path.join(self.data, "PG_VERSION"))
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        if fresh:
            as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust"],
                        stdout=subprocess.DEVNULL)
        as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                     "-w", "-o",
                     f"-p {self.port} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB "
                     "-c max_connections=64 -c unix_socket_directories=''", "start"],
                    stdout=subprocess.DEVNULL)
        return fresh

    def stop(self):
        as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "stop"],
                    stdout=subprocess.DEVNULL)

    def load(self, parquet):
        if self.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'cat'") == "1":
            return None
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            csv = os.path.join(tmp, "cat.csv")
            t = pq.read_table(parquet, columns=["id", "ra", "dec", "mag", "flux"])
            pacsv.write_csv(t, csv, pacsv.WriteOptions(include_header=False))
            del t
            os.chmod(tmp, 0o755)
            self.psql("CREATE EXTENSION IF NOT EXISTS q3c")
            self.psql("CREATE TABLE cat (id bigint, ra double precision, dec double precision, "
                      "mag real, flux real)")
            subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-v", "ON_ERROR_STOP=1", "-c", f"\\copy cat FROM '{csv}' WITH (FORMAT csv)"],
                           check=True, stdout=subprocess.DEVNULL)
        self.psql("CREATE INDEX cat_q3c ON cat (q3c_ang2ipix(ra, dec))")
        self.psql("CLUSTER cat USING cat_q3c")
        self.psql("ANALYZE cat")
        return time.perf_counter() - t0

    def pss_mb(self):
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "postgres":
                        continue
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def bench(self, script, clients, seconds):
        """pgbench -M prepared; returns q/s, p50, p99 (ms) from its per-transaction log."""
        with tempfile.TemporaryDirectory() as tmp:
            f = os.path.join(tmp, "q.sql")
            with open(f, "w") as fh:
                fh.write(script)
            out = subprocess.run(
                ["pgbench", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-n",
                 "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)), "-T",
                 str(seconds), "-f", f, "-l", "--log-prefix", os.path.join(tmp, "log"),
                 "postgres"], check=True, capture_output=True, text=True).stdout
            lat = []
            for name in os.listdir(tmp):
                if name.startswith("log"):
                    with open(os.path.join(tmp, name)) as fh:
                        lat.extend(int(line.split()[2]) / 1000.0 for line in fh)
        lat.sort()
        tps = float(next(l for l in out.splitlines() if l.startswith("tps")).split()[2])
        return {"qps": tps, "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)],
                "queries": len(lat)}


def http_load(load_bin, url, seconds, connections, pid, extra):
    out = subprocess.run([load_bin, "--bench", "--url", url, "--seconds", str(seconds),
                          "--connections", str(connections), "--server-pid", str(pid)] + extra,
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["errors"] == 0, r
    return r


def flight_prepared(port, sql_tpl, centre, radius, seconds):
    import adbc_driver_flightsql.dbapi as flight
    conn = flight.connect(f"grpc://127.0.0.1:{port}")
    cur = conn.cursor()
    ra, dec = centre
    lat = []
    t_end = time.perf_counter() + seconds
    n = None
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        cur.execute(sql_tpl, parameters=(ra, dec, radius))
        n = cur.fetchall()[0][0]
        lat.append((time.perf_counter() - t0) * 1e3)
    cur.close()
    conn.close()
    lat = lat[len(lat) // 10:]
    lat.sort()
    return {"p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)],
            "qps": 1e3 / statistics.mean(lat), "count": n}


def get_count(url, sql):
    req = urllib.request.Request(f"{url}/v1/sql", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())[0]["n"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("datadir")
    ap.add_argument("--astropipe", required=True)
    ap.add_argument("--load-bin", required=True)
    ap.add_argument("--hats", action="append", help="HATS catalogs to serve (default DATADIR/hats/cat)")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--single-seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--hot-cache-mb", type=int, default=1024)
    ap.add_argument("--pg-dir", default="/var/tmp/q3c-bench")
    a = ap.parse_args()
    parquet = os.path.join(a.datadir, "catalog_unsorted.parquet")
    first = pq.read_table(parquet, columns=["ra", "dec"]).slice(0, 1).to_pylist()[0]
    centre = (first["ra"], first["dec"])
    R = {"centre": centre}

    pg = Postgres(a.pg_dir, free_port())
    pg.start()
    try:
        loaded = pg.load(parquet)
        if loaded:
            R["pg_load_seconds"] = round(loaded, 1)
        pg.psql("SELECT count(*) FROM cat")  # warm
        pgq = {}
        for label, radius in (("1arcmin", ARCMIN), ("1deg", 1.0)):
            script = (f"SELECT count(*) FROM cat WHERE q3c_radial_query(ra, dec, {centre[0]!r}, "
                      f"{centre[1]!r}, {radius!r});\n")
            pgq[label] = pg.bench(script, 1, a.single_seconds)
            pgq[label]["count"] = int(pg.psql(script.rstrip(";\n")))
            # The rows themselves (what /scs returns): id, ra, dec, mag.
            rows = script.replace("count(*)", "id, ra, dec, mag")
            pgq[label + " rows"] = pg.bench(rows, 1, a.single_seconds)
        rand = ("\\set r random(0, 1000000000)\n\\set z random(-1000000000, 1000000000)\n"
                "SELECT id, ra, dec, mag FROM cat WHERE q3c_radial_query(ra, dec, "
                f":r * 360.0 / 1e9, degrees(asin(:z / 1e9)), {ARCMIN!r});\n")
        pgq["load"] = pg.bench(rand, a.connections, a.seconds)
        pgq["load"]["pss_mb"] = round(pg.pss_mb(), 1)
        R["q3c"] = pgq
    finally:
        pg.stop()

    for hats in a.hats or [os.path.join(a.datadir, "hats", "cat")]:
        port, fport = free_port(), free_port()
        with tempfile.TemporaryDirectory() as tmp:
            srv = subprocess.Popen(
                [a.astropipe, "serve", "--catalog", os.path.join(tmp, "none"), "--addr",
                 f"127.0.0.1:{port}", "--flight-addr", f"127.0.0.1:{fport}", "--table",
                 f"cat={hats}", "--hot-cache-mb", str(a.hot_cache_mb), "--row-limit", "100000",
                 "--max-client-queries", "64"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}"
                for _ in range(300):
                    try:
                        urllib.request.urlopen(f"{url}/readyz").read()
                        break
                    except Exception:
                        time.sleep(0.2)
                ap_r = {}
                # Warm-up: every partition read twice (loaded into the hot cache), then the cones.
                http_load(a.load_bin, url, 20, 2, srv.pid, ["--radius-deg", "1.0"])
                for label, radius in (("1arcmin", ARCMIN), ("1deg", 1.0)):
                    n = get_count(url, f"SELECT count(*) AS n FROM cat WHERE cone_contains(ra, dec, "
                                       f"{centre[0]!r}, {centre[1]!r}, {radius!r})")
                    assert n == R["q3c"][label]["count"], (label, n, R["q3c"][label]["count"])
                    c = ["--centre", f"{centre[0]!r},{centre[1]!r}", "--radius-deg", repr(radius)]
                    ap_r[label] = {
                        "count": n,
                        "http": http_load(a.load_bin, url, a.single_seconds, 1, srv.pid, c + ["--count"]),
                        "scs": http_load(a.load_bin, url, a.single_seconds, 1, srv.pid, c + ["--scs"]),
                        "flight_prepared": http_load(
                            a.load_bin, url, a.single_seconds, 1, srv.pid,
                            c + ["--count", "--flight", f"127.0.0.1:{fport}"]),
                        "flight_prepared_adbc": flight_prepared(
                            fport, "SELECT count(*) FROM cat WHERE cone_contains(ra, dec, $1, $2, $3)",
                            centre, radius, a.single_seconds),
                    }
                    assert ap_r[label]["flight_prepared_adbc"]["count"] == n
                ap_r["load"] = http_load(a.load_bin, url, a.seconds, a.connections, srv.pid, [])
                R[f"astropipe {hats}"] = ap_r
            finally:
                srv.terminate()
                srv.wait()

    print(json.dumps(R, indent=1))
    q = R["q3c"]
    print("\n| work | astropipe | PostgreSQL + q3c | ratio |\n|---|---|---|---|")
    for hats in a.hats or [os.path.join(a.datadir, "hats", "cat")]:
        r = R[f"astropipe {hats}"]
        print(f"| *{hats}* | | | |")
        for label in ("1arcmin", "1deg"):
            base = q[label]["p50_ms"]
            for how in ("flight_prepared", "flight_prepared_adbc", "http"):
                m = r[label][how]["p50_ms"]
                print(f"| {label} cone count, one client, p50, {how} | {m:.3f} ms | {base:.3f} ms | {m / base:.2f}x |")
            base = q[label + " rows"]["p50_ms"]
            m = r[label]["scs"]["p50_ms"]
            print(f"| {label} cone rows ({r[label]['count']}), one client, p50, /scs VOTable vs rows | "
                  f"{m:.3f} ms | {base:.3f} ms | {m / base:.2f}x |")
        ld, ql = r["load"], q["load"]
        print(f"| random 1' cones, {a.connections} conns, q/s | {ld['qps']:.0f} | {ql['qps']:.0f} | "
              f"{ld['qps'] / ql['qps']:.2f}x |")
        print(f"| same, p50 / p99 | {ld['p50_ms']:.2f} / {ld['p99_ms']:.2f} ms | "
              f"{ql['p50_ms']:.2f} / {ql['p99_ms']:.2f} ms | {ld['p99_ms'] / ql['p99_ms']:.2f}x (p99) |")
        print(f"| memory | RSS {ld['rss_mb_first']:.0f} -> {ld['rss_mb_last']:.0f} MB (max {ld['rss_mb_max']:.0f}) | "
              f"PSS {ql['pss_mb']:.0f} MB | |")


if __name__ == "__main__":
    sys.exit(main())

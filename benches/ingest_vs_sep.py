#!/usr/bin/env python3
"""astropipe ingest vs SEP on the same synthetic frame, timed in one run; prints the ratio.

    python benches/ingest_vs_sep.py [--size 2048] [--nstars 1000] [--reps 5] [--bin PATH]

Needs numpy, astropy and sep (e.g. the venv of ../shared/tools/pyref-setup.sh) and a release
build of astropipe (`cargo build --release`; --bin defaults to
$CARGO_TARGET_DIR/release/astropipe or target/release/astropipe).

The frame follows make_synthetic.py's model (sky 1000 + gradient, N(0, 10) noise, Gaussian
stars sigma 1.5 px, log-uniform fluxes 10^2.5..10^5.5). Timed:
  - SEP: Background (64 px meshes, 3x3 filter) + subtraction + extract(1.5 sigma, err=globalrms),
    on the float32 array already in memory (as bench_image.py does);
  - astropipe: the whole `astropipe ingest FILE --catalog TMP` process: start, read the FITS file,
    background, detection, measurement, WCS, Parquet write and commit.
Medians of --reps runs; the ratio is astropipe / SEP (below 1 = astropipe faster).
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time
import numpy as np


def make_frame(size, nstars, seed=20240601, sky=1000.0, noise=10.0, sigma=1.5, half=8):
    rng = np.random.default_rng(seed)
    x = rng.uniform(half, size - 1 - half, nstars)
    y = rng.uniform(half, size - 1 - half, nstars)
    flux = 10 ** rng.uniform(2.5, 5.5, nstars)
    img = rng.normal(0.0, noise, (size, size))
    gy = np.arange(size, dtype=np.float64)[:, None] / size
    gx = np.arange(size, dtype=np.float64)[None, :] / size
    img += sky + 20.0 * gx + 10.0 * gy
    off = np.arange(-half, half + 1, dtype=np.float64)
    norm = 1.0 / (2 * np.pi * sigma ** 2)
    for i in range(nstars):
        ix, iy = int(round(x[i])), int(round(y[i]))
        dx = (ix + off) - x[i]
        dy = (iy + off) - y[i]
        img[iy - half:iy + half + 1, ix - half:ix + half + 1] += (
            np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / sigma ** 2) * flux[i] * norm)
    return img.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--nstars", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--bin")
    a = ap.parse_args()
    import sep
    from astropy.io import fits
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    binary = a.bin or os.path.join(target, "release", "astropipe")
    if not os.path.exists(binary):
        sys.exit(f"no astropipe binary at {binary}: cargo build --release first")
    work = tempfile.mkdtemp(prefix="astropipe-bench-")
    try:
        data = make_frame(a.size, a.nstars)
        path = os.path.join(work, f"synthetic_{a.size}.fits")
        fits.PrimaryHDU(data).writeto(path)
        sep.set_extract_pixstack(20_000_000)
        sep.set_sub_object_limit(10_000)

        def run_sep():
            b = sep.Background(data)
            s = data - b
            return sep.extract(s, 1.5, err=b.globalrms)

        def run_ours(i):
            cat = os.path.join(work, f"cat{i}")
            out = subprocess.run([binary, "ingest", path, "--catalog", cat, "--json"],
                                 check=True, capture_output=True, text=True)
            return out.stdout

        sep_t, ours_t, n_sep, report = [], [], 0, ""
        for i in range(a.reps):  # interleaved, so both see the same machine load
            t0 = time.perf_counter(); n_sep = len(run_sep()); sep_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); report = run_ours(i); ours_t.append(time.perf_counter() - t0)
        import json
        rep = json.loads(report)
        s, o = statistics.median(sep_t), statistics.median(ours_t)
        print(f"frame {a.size}x{a.size}, {a.nstars} stars, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        print(f"SEP background+extract:      {s:.3f} s  ({n_sep} sources)")
        print(f"astropipe ingest (process):  {o:.3f} s  ({rep['sources']} sources)")
        print(f"ratio astropipe/SEP:         {o / s:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Image science: astropipe vs SEP, astroscrappy and numpy on the same 4096² frame, in one run.

    python benches/image_vs_reference.py [--dir DIR] [--reps 5] [--scrappy-reps 1]

Needs numpy, astropy, sep and astroscrappy (the venv of ../shared/tools/pyref-setup.sh).
Writes DIR/synthetic_4096.fits (5000 stars, make_synthetic.py's model, as
benches/fits_vs_astropy.py), then times on that array:
  - SEP: Background (64 px meshes, 3x3 filter) + subtraction + extract(1.5 sigma,
    err=globalrms) -- single-threaded by design;
  - astroscrappy.detect_cosmics(data, gain=1, readnoise=10, satlevel=1e9) as
    ../shared/tools/bench_image.py runs it (OpenMP on all cores);
  - numpy.median(axis=0) of 10 frames of 4096^2 (Gaussian noise, as bench_image.py's calib);
and runs `cargo bench --bench image_stages -- FILE` for astropipe's background + detection
(with deblending) + measurement (windowed centroids, apertures, AUTO) and L.A.Cosmic, on one
thread and on all cores (timing the call on the image buffer it consumes, as ingest hands it
over; SEP's timing includes its own `data - back` array), and its median combine of 10 such frames. Prints the ratios (astropipe / reference; below 1 = astropipe faster).
"""
import argparse, json, os, statistics, subprocess, sys, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_vs_sep import make_frame  # same synthetic model


def timeit(fn, reps):
    out = fn()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter(); out = fn(); t.append(time.perf_counter() - t0)
    return statistics.median(t), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', default='/tmp/astropipe-bench-fits')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--scrappy-reps', type=int, default=1)
    a = ap.parse_args()
    import sep, astroscrappy
    from astropy.io import fits
    os.makedirs(a.dir, exist_ok=True)
    path = os.path.join(a.dir, 'synthetic_4096.fits')
    if not os.path.exists(path):
        fits.PrimaryHDU(make_frame(4096, 5000)).writeto(path)
    data = fits.getdata(path).astype(np.float32)
    sep.set_extract_pixstack(20_000_000); sep.set_sub_object_limit(10_000)

    def run_sep():
        b = sep.Background(data)
        return sep.extract(data - b, 1.5, err=b.globalrms)

    t_sep, objs = timeit(run_sep, a.reps)
    t_scrappy, (m, _) = timeit(lambda: astroscrappy.detect_cosmics(data, gain=1.0, readnoise=10.0, satlevel=1e9),
                               a.scrappy_reps)
    rng = np.random.default_rng(7)
    stack = np.stack([(500 + 5 * rng.standard_normal((4096, 4096))).astype(np.float32) for _ in range(10)])
    t_median, _ = timeit(lambda: np.median(stack, axis=0), a.reps)
    del stack
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, REPS=str(a.reps))
    out = subprocess.run(['cargo', 'bench', '--bench', 'image_stages', '--', path], cwd=root, check=True,
                         capture_output=True, text=True, env=env).stdout
    ours = json.loads([l for l in out.splitlines() if l.startswith('{')][-1])
    print(f"4096x4096, 5000 stars, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"SEP background+extract:   {t_sep:.3f} s ({len(objs)} sources, one thread)")
    for k in ('1', 'all'):
        e = ours[f'extract_threads_{k}']
        print(f"astropipe extract, {k:>3} thread(s): {e:.3f} s ({ours['n_sources']} sources)  ratio {e / t_sep:.2f}")
    print(f"astroscrappy:             {t_scrappy:.3f} s ({int(m.sum())} pixels, OpenMP)")
    for k in ('1', 'all'):
        c = ours[f'lacosmic_threads_{k}']
        print(f"astropipe L.A.Cosmic, {k:>3} thread(s): {c:.3f} s ({ours['lacosmic_pixels']} pixels)  ratio {c / t_scrappy:.3f}")
    print(f"numpy median of 10 x 4096^2: {t_median:.3f} s")
    print(f"astropipe median combine:   {ours['median_combine_10']:.3f} s  ratio {ours['median_combine_10'] / t_median:.3f}")
    print(f"astropipe 3-sigma-clipped median combine: {ours['clipped_median_combine_10']:.3f} s  ratio {ours['clipped_median_combine_10'] / t_median:.3f}")
    for k in ('1', 'all'):
        c = ours[f'extract_with_cosmics_threads_{k}']
        print(f"astropipe L.A.Cosmic + extract, {k:>3} thread(s): {c:.3f} s  ratio to SEP extract alone {c / t_sep:.2f}")


if __name__ == '__main__':
    main()

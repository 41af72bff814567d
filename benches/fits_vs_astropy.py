#!/usr/bin/env python3
"""FITS reading: astropipe vs astropy on the same 4096x4096 float32 frames, in one run.

    python benches/fits_vs_astropy.py [--dir DIR] [--reps 9]

Needs numpy and astropy (e.g. the venv of ../shared/tools/pyref-setup.sh). Writes
DIR/synthetic_4096.fits (make_synthetic.py's model) and DIR/synthetic_4096_rice.fits (RICE_1,
quantize_level 16, SUBTRACTIVE_DITHER_1, as bench_image.py), times astropy, runs
`cargo bench --bench fits_read` on the same files, and prints the ratios (astropipe/astropy;
below 1 = astropipe faster). Both sides read from the page cache; medians of the repetitions.
"""
import argparse, json, os, statistics, subprocess, sys, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_vs_sep import make_frame  # same synthetic model


def timeit(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', default='/tmp/astropipe-bench-fits')
    ap.add_argument('--reps', type=int, default=9)
    a = ap.parse_args()
    from astropy.io import fits
    os.makedirs(a.dir, exist_ok=True)
    plain = os.path.join(a.dir, 'synthetic_4096.fits')
    rice = os.path.join(a.dir, 'synthetic_4096_rice.fits')
    if not os.path.exists(plain):
        data = make_frame(4096, 5000)
        fits.PrimaryHDU(data).writeto(plain, overwrite=True)
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type='RICE_1', quantize_level=16.0,
                                                           quantize_method=1)]).writeto(rice, overwrite=True)
    # Correctness first: the same pixels.
    ref_rice = fits.open(rice)[1].data
    astropy_plain = timeit(lambda: fits.open(plain, memmap=False)[0].data.astype('=f4'), a.reps)
    astropy_rice = timeit(lambda: fits.open(rice)[1].data, a.reps)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(['cargo', 'bench', '--bench', 'fits_read', '--', a.dir], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    ours = json.loads([l for l in out.splitlines() if l.startswith('{')][-1])
    print(f"4096x4096 float32, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, astropipe threads {ours['threads']}")
    print(f"uncompressed: astropy {astropy_plain*1e3:.1f} ms; astropipe direct {ours['read_uncompressed_direct']*1e3:.1f} ms "
          f"(ratio {ours['read_uncompressed_direct']/astropy_plain:.2f}), in memory {ours['read_uncompressed_in_memory']*1e3:.1f} ms "
          f"(ratio {ours['read_uncompressed_in_memory']/astropy_plain:.2f})")
    print(f"RICE_1:       astropy {astropy_rice*1e3:.1f} ms; astropipe {ours['read_rice']*1e3:.1f} ms "
          f"(ratio {ours['read_rice']/astropy_rice:.2f})")
    _ = ref_rice


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Makes the SEP golden data the image-science tests compare against (tests/image_science.rs).

    python tests/golden/make_sep_golden.py   # needs numpy, astropy, sep (pyref-setup.sh's venv)

Writes, next to this script:
  sep_frame.fits.gz   512x512 star field stored as uint16 counts (BITPIX 16, BZERO 32768), gzipped:
                      sky 1000 + 20 x/512 + 10 y/512, 400 circular Gaussian stars (sigma 1.5 px,
                      flux log-uniform 10^2.5..10^5.5, positions uniform), N(0, 10^2) noise,
                      rounded to integers (the model of ../shared/tools/make_synthetic.py).
  sep_golden.json     what SEP 1.4 says about that frame (and the truth):
    background: sep.Background(data) with bw=bh=64, fw=fh=3: global back/rms, and the back and
                rms maps sampled every 16 px from (8, 8) (row-major, 32x32);
    apertures:  sep.sum_circle(data, x_true, y_true, r, subpix=0) (exact overlap) on the raw frame
                for r = 3, 5, 8: the geometry of circular apertures alone;
    objects:    sep.extract(data - back, 1.5, err=globalrms) with SEP's defaults (3x3 conv
                kernel, minarea 5, 32 deblending levels, contrast 0.005, cleaning), plus
                sep.winpos with sig = 2/2.35 * flux_radius(0.5) and AUTO fluxes (kron_radius at
                6 a, b; sum_ellipse at 2.5 kr, minimum radius 3.5 as a circle);
    truth:      the injected stars (0-based x, y; flux).
"""
import gzip, io, json, os
import numpy as np
import sep
from astropy.io import fits

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE, NSTARS, SEED, SKY, NOISE, PSF = 512, 400, 20261126, 1000.0, 10.0, 1.5


def make_frame():
    rng = np.random.default_rng(SEED)
    half = 8
    x = rng.uniform(half, SIZE - 1 - half, NSTARS)
    y = rng.uniform(half, SIZE - 1 - half, NSTARS)
    flux = 10 ** rng.uniform(2.5, 5.5, NSTARS)
    img = rng.normal(0.0, NOISE, (SIZE, SIZE))
    gy = np.arange(SIZE, dtype=np.float64)[:, None] / SIZE
    gx = np.arange(SIZE, dtype=np.float64)[None, :] / SIZE
    img += SKY + 20.0 * gx + 10.0 * gy
    off = np.arange(-half, half + 1, dtype=np.float64)
    norm = 1.0 / (2 * np.pi * PSF ** 2)
    for i in range(NSTARS):
        ix, iy = int(round(x[i])), int(round(y[i]))
        dx = (ix + off) - x[i]
        dy = (iy + off) - y[i]
        stamp = np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / PSF ** 2) * (flux[i] * norm)
        img[iy - half:iy + half + 1, ix - half:ix + half + 1] += stamp
    counts = np.clip(np.round(img), 0, 65535).astype(np.uint16)
    return counts, x, y, flux


def main():
    counts, tx, ty, tflux = make_frame()
    buf = io.BytesIO()
    fits.PrimaryHDU(counts).writeto(buf)  # astropy writes uint16 as BITPIX 16 + BZERO 32768
    with gzip.GzipFile(os.path.join(HERE, 'sep_frame.fits.gz'), 'wb', mtime=0) as f:
        f.write(buf.getvalue())
    data = counts.astype(np.float32)
    bkg = sep.Background(data)
    back, rms = bkg.back(), bkg.rms()
    s = slice(8, SIZE, 16)
    sub = data - back
    objs = sep.extract(sub, 1.5, err=bkg.globalrms)
    fr, _ = sep.flux_radius(sub, objs['x'], objs['y'], 6.0 * objs['a'], 0.5, normflux=objs['flux'], subpix=5)
    sig = 2.0 / 2.35 * fr
    xwin, ywin, wflag = sep.winpos(sub, objs['x'], objs['y'], sig)
    kr, _ = sep.kron_radius(sub, objs['x'], objs['y'], objs['a'], objs['b'], objs['theta'], 6.0)
    auto, auto_err, _ = sep.sum_ellipse(sub, objs['x'], objs['y'], objs['a'], objs['b'], objs['theta'],
                                        2.5 * kr, err=bkg.globalrms, subpix=1)
    small = kr * np.sqrt(objs['a'] * objs['b']) < 3.5 / 2.5  # SExtractor's minimum diameter rule
    if small.any():
        c, ce, _ = sep.sum_circle(sub, objs['x'][small], objs['y'][small], 3.5, err=bkg.globalrms, subpix=1)
        auto[small], auto_err[small] = c, ce
    apertures = {}
    for r in (3.0, 5.0, 8.0):
        f, _, _ = sep.sum_circle(data, tx, ty, r, subpix=0)
        apertures[str(r)] = [float(v) for v in f]
    rnd = lambda a, n=6: [round(float(v), n) for v in a]
    out = {
        'made_by': 'tests/golden/make_sep_golden.py',
        'sep_version': sep.__version__,
        'numpy_version': np.__version__,
        'background': {
            'mesh': 64, 'filter': 3, 'global_back': float(bkg.globalback), 'global_rms': float(bkg.globalrms),
            'sample_start': 8, 'sample_step': 16,
            'back': rnd(back[s, s].ravel()), 'rms': rnd(rms[s, s].ravel()),
        },
        'apertures': apertures,
        'objects': {k: rnd(v) for k, v in {
            'x': objs['x'], 'y': objs['y'], 'a': objs['a'], 'b': objs['b'], 'theta': objs['theta'],
            'flux': objs['flux'], 'npix': objs['npix'], 'flag': objs['flag'],
            'xwin': xwin, 'ywin': ywin, 'kron_radius': kr, 'flux_auto': auto, 'flux_auto_err': auto_err,
        }.items()},
        'truth': {'x': rnd(tx), 'y': rnd(ty), 'flux': rnd(tflux, 3), 'psf_sigma': PSF, 'noise': NOISE},
    }
    with open(os.path.join(HERE, 'sep_golden.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))
    print(f"{len(objs)} SEP objects; global back {bkg.globalback:.4f} rms {bkg.globalrms:.4f}")


if __name__ == '__main__':
    main()

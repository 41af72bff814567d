#!/usr/bin/env python3
"""Makes the astroscrappy golden data the cosmic-ray tests compare against.

    python tests/golden/make_scrappy_golden.py   # needs numpy, astropy, astroscrappy 1.3

Writes scrappy_golden.json next to this script:
  gmos:     astroscrappy.detect_cosmics on tests/data/gmos.fits[SCI] with the parameters of
            astroscrappy's own GMOS test (gain 1.933, readnoise 4.24, otherwise defaults:
            sigclip 4.5, sigfrac 0.3, objlim 5, niter 4, sepmed, meanmask): the flagged pixels
            as row-major indices;
  injected: the SEP golden frame (sep_frame.fits.gz) plus cosmic-ray hits (single pixels and
            2-4 pixel tracks, 200..3000 ADU per pixel, at least 8 px from every injected star):
            the hits (row-major index, ADU added) and what astroscrappy flags on that frame
            with gain 10 e-/ADU (so that its Poisson noise model matches the frame's 10 ADU
            noise on a 1000 ADU sky) and readnoise 1 e-.
"""
import json, os
import numpy as np
import astroscrappy
from astropy.io import fits

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), 'data')


def main():
    with fits.open(os.path.join(DATA, 'gmos.fits')) as h:
        sci = h['SCI'].data.astype(np.float32)
    m, _ = astroscrappy.detect_cosmics(sci, readnoise=4.24, gain=1.933)
    gmos = {'width': sci.shape[1], 'height': sci.shape[0], 'gain': 1.933, 'readnoise': 4.24,
            'flagged': [int(i) for i in np.flatnonzero(m)]}

    golden = json.load(open(os.path.join(HERE, 'sep_golden.json')))
    frame = fits.getdata(os.path.join(HERE, 'sep_frame.fits.gz')).astype(np.float32)
    ny, nx = frame.shape
    tx, ty = np.array(golden['truth']['x']), np.array(golden['truth']['y'])
    rng = np.random.default_rng(4242)
    hits = {}
    tries = 0
    while len(hits) < 150 and tries < 10000:
        tries += 1
        x, y = int(rng.integers(4, nx - 4)), int(rng.integers(4, ny - 4))
        if np.min(np.hypot(tx - x, ty - y)) < 8:
            continue
        length = int(rng.choice([1, 1, 2, 3, 4]))
        dx, dy = [(1, 0), (0, 1), (1, 1), (1, -1)][int(rng.integers(0, 4))]
        for k in range(length):
            p = (y + k * dy) * nx + (x + k * dx)
            hits[p] = hits.get(p, 0.0) + float(rng.uniform(200, 3000))
    idx = np.array(sorted(hits))
    add = np.array([hits[p] for p in idx], dtype=np.float32)
    img = frame.copy().ravel()
    img[idx] += add
    img = img.reshape(ny, nx)
    mi, _ = astroscrappy.detect_cosmics(img, gain=10.0, readnoise=1.0)
    flagged = np.flatnonzero(mi)
    out = {
        'made_by': 'tests/golden/make_scrappy_golden.py',
        'astroscrappy_version': astroscrappy.__version__,
        'gmos': gmos,
        'injected': {'gain': 10.0, 'readnoise': 1.0, 'hits': [int(i) for i in idx],
                     'added': [round(float(a), 3) for a in add], 'flagged': [int(i) for i in flagged]},
    }
    json.dump(out, open(os.path.join(HERE, 'scrappy_golden.json'), 'w'), separators=(',', ':'))
    hit = set(idx.tolist())
    print(f"gmos: {m.sum()} flagged; injected: {len(idx)} hit pixels, astroscrappy flags {len(flagged)}, "
          f"recovers {sum(p in hit for p in flagged)}, false {sum(p not in hit for p in flagged)}")


if __name__ == '__main__':
    main()

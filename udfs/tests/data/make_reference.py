#!/usr/bin/env python3
"""Reference values for the astropipe-udfs tests, computed with astropy (and astropy-healpix).

    python make_reference.py > reference.json

Run in a venv with astropy and astropy-healpix (e.g. ../shared/tools/pyref-setup.sh's).
Positions: 200 deterministic points over the whole sky plus the poles and the RA wrap.
"""
import json

import numpy as np
import astropy
import astropy.units as u
from astropy.coordinates import SkyCoord, BarycentricMeanEcliptic
from astropy.time import Time
from astropy_healpix import HEALPix

rng = np.random.default_rng(20261126)
n = 200
ra = rng.uniform(0, 360, n)
dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
ra = np.r_[ra, [0.0, 359.9999999, 180.0, 45.0, 10.0]]
dec = np.r_[dec, [0.0, -1.0, 89.9999, -89.9999, 90.0]]
c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
g = c.galactic
e = c.transform_to(BarycentricMeanEcliptic(equinox="J2000"))
ra2 = rng.uniform(0, 360, len(ra))
dec2 = np.degrees(np.arcsin(rng.uniform(-1, 1, len(ra))))
# Some pairs very close and some nearly antipodal.
ra2[:20] = ra[:20] + rng.normal(0, 1e-4, 20)
dec2[:20] = np.clip(dec[:20] + rng.normal(0, 1e-4, 20), -90, 90)
ra2[20:30] = (ra[20:30] + 180.0) % 360.0
dec2[20:30] = -dec[20:30] + rng.normal(0, 1e-3, 10)
sep = c.separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
hp = {}
for order in (0, 5, 12, 29):
    for scheme in ("nested", "ring"):
        idx = HEALPix(nside=2 ** order, order=scheme).lonlat_to_healpix(ra * u.deg, dec * u.deg)
        hp[f"{scheme}_{order}"] = [int(i) for i in idx]
mjd = [0.0, 40587.0, 51544.5, 60000.123456, 61000.999999]
iso = [Time(m, format="mjd", scale="utc").isot for m in mjd]
print(json.dumps({
    "astropy": astropy.__version__,
    "ra": ra.tolist(), "dec": dec.tolist(),
    "gal_l": g.l.deg.tolist(), "gal_b": g.b.deg.tolist(),
    "ecl_lon": e.lon.deg.tolist(), "ecl_lat": e.lat.deg.tolist(),
    "ra2": ra2.tolist(), "dec2": dec2.tolist(), "sep_deg": sep.tolist(),
    "healpix": hp,
    "mjd": mjd, "mjd_isot_utc": iso,
}))

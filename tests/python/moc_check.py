"""Checks a served table's MOC against mocpy's, made from the same positions.

Usage: moc_check.py BASE_URL TABLE ORDER
Fetches the table's ra, dec (rows with a HEALPix index) with /v1/sql, builds mocpy's MOC of
those positions at ORDER, and reads ours from /v1/tables/TABLE/moc?order=ORDER as JSON and as
FITS (with mocpy). Prints JSON: whether each equals mocpy's, the cell counts and sky fractions.
"""
import json
import os
import sys
import tempfile
import urllib.request

import astropy.units as u
import numpy as np
from mocpy import MOC

base, table, order = sys.argv[1], sys.argv[2], int(sys.argv[3])


def get(path, data=None):
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req) as r:
        return r.read(), r.headers


rows, _ = get("/v1/sql", f'SELECT ra, dec FROM "{table}" WHERE _healpix_29 IS NOT NULL'.encode())
rows = json.loads(rows)
ra = np.array([r["ra"] for r in rows])
dec = np.array([r["dec"] for r in rows])
theirs = MOC.from_lonlat(lon=ra * u.deg, lat=dec * u.deg, max_norder=order)

body, headers = get(f"/v1/tables/{table}/moc?order={order}")
ours_json = MOC.from_json(json.loads(body))
fits, fits_headers = get(f"/v1/tables/{table}/moc?order={order}&format=fits")
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "moc.fits")
    with open(path, "wb") as f:
        f.write(fits)
    ours_fits = MOC.from_fits(path)

print(json.dumps({
    "rows": len(rows),
    "json_equal": bool(ours_json == theirs),
    "fits_equal": bool(ours_fits == theirs),
    "json_max_order": int(ours_json.max_order),
    "fits_max_order": int(ours_fits.max_order),
    "fits_content_type": fits_headers.get("Content-Type"),
    "cells_mocpy": int(len(theirs.flatten())),
    "cells_ours": int(len(ours_json.flatten())),
    "sky_fraction_mocpy": float(theirs.sky_fraction),
    "sky_fraction_ours": float(headers.get("x-moc-sky-fraction")),
}))

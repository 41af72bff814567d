#!/usr/bin/env python3
"""Reference answers of astropy.wcs (WCSLIB) for every projection and frame astropipe supports.

    python make_wcs_reference.py      # astropy 8.0.2 was used; writes reference.json here

For each case: a header (cards as strings), 0-based pixels, astropy's all_pix2world for them
(null off the sky), and for on-sky points the ICRS position astropy's SkyCoord gives for the
WCS's frame (wcs_to_celestial_frame). Pixel coordinates follow astropy (origin 0).
"""
import json, os, warnings
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame
from astropy.coordinates import SkyCoord
import astropy.units as u

warnings.simplefilter('ignore')
here = os.path.dirname(os.path.abspath(__file__))

PROJ = {
    'AZP': {'PV2_1': 2.0, 'PV2_2': 30.0},
    'SZP': {'PV2_1': 2.0, 'PV2_2': 180.0, 'PV2_3': 60.0},
    'TAN': {}, 'STG': {}, 'SIN': {'PV2_1': 0.1, 'PV2_2': -0.2}, 'ARC': {},
    'ZPN': {'PV2_0': 0.0, 'PV2_1': 1.0, 'PV2_2': 0.0, 'PV2_3': -0.05},
    'ZEA': {}, 'AIR': {'PV2_1': 45.0},
    'CYP': {'PV2_1': 1.0, 'PV2_2': 0.7071}, 'CEA': {'PV2_1': 0.8}, 'CAR': {}, 'MER': {},
    'SFL': {}, 'PAR': {}, 'MOL': {}, 'AIT': {},
    'COP': {'PV2_1': 45.0, 'PV2_2': 20.0}, 'COE': {'PV2_1': 45.0, 'PV2_2': 20.0},
    'COD': {'PV2_1': 45.0, 'PV2_2': 20.0}, 'COO': {'PV2_1': 45.0, 'PV2_2': 20.0},
    'BON': {'PV2_1': 45.0}, 'PCO': {}, 'TSC': {}, 'CSC': {}, 'QSC': {}, 'HPX': {},
}

def pixels(n=100, step=11):
    g = np.arange(0, n, step, dtype=float)
    pts = [(x, y) for y in g for x in g]
    pts += [(0.0, 0.0), (n - 1.0, n - 1.0), ((n - 1) / 2, (n - 1) / 2), (12.25, 87.5), (63.7, 4.2)]
    return np.array(pts)

def case(name, cards, n=100, step=11, note=''):
    h = fits.Header()
    h['NAXIS'] = 2; h['NAXIS1'] = n; h['NAXIS2'] = n
    for k, v in cards.items():
        h[k] = v
    w = WCS(h)
    pix = pixels(n, step)
    world = w.all_pix2world(pix, 0)
    out = dict(name=name, note=note, header=[c.image for c in h.cards], pixel_0based=pix.tolist(),
               world_deg=[[None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b)]
                          for a, b in world])
    ok = np.all(np.isfinite(world), axis=1)
    try:
        frame = wcs_to_celestial_frame(w)
        if w.wcs.ctype[0].startswith('ELON'):
            # astropy maps ELON/ELAT to ICRS (RADESYS defaults to ICRS in WCSLIB); the ecliptic
            # meant is the mean ecliptic and equinox of J2000.
            from astropy.coordinates import BarycentricMeanEcliptic
            frame = BarycentricMeanEcliptic(equinox='J2000')
        out['frame'] = frame.__class__.__name__ + (f'(equinox={frame.equinox})' if hasattr(frame, 'equinox') else '')
        sc = SkyCoord(world[ok, 0] * u.deg, world[ok, 1] * u.deg, frame=frame).icrs
        icrs = np.full(world.shape, np.nan)
        icrs[ok, 0] = sc.ra.deg; icrs[ok, 1] = sc.dec.deg
        out['icrs_deg'] = [[None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b)] for a, b in icrs]
    except Exception as e:
        out['frame_error'] = str(e)
    # world -> pixel for the on-sky points (round trip as astropy does it)
    back = np.full(pix.shape, np.nan)
    if ok.any():
        back[ok] = w.all_world2pix(world[ok], 0, tolerance=1e-10, maxiter=100, quiet=True)
    out['world2pix_0based'] = [[None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b)] for a, b in back]
    return out

cases = []
for code, pv in PROJ.items():
    cards = {'CTYPE1': f'RA---{code}', 'CTYPE2': f'DEC--{code}', 'CRPIX1': 50.5, 'CRPIX2': 50.5,
             'CDELT1': -0.8, 'CDELT2': 0.8, 'CRVAL1': 150.0, 'CRVAL2': 30.0, 'RADESYS': 'ICRS'}
    cards.update(pv)
    cases.append(case(f'proj_{code}', cards, note=f'{code} with {pv or "default parameters"}'))
    # Same projection with the reference point at the origin (native = celestial for theta0 = 0).
    cards2 = dict(cards); cards2['CRVAL1'] = 0.0; cards2['CRVAL2'] = 0.0
    cases.append(case(f'proj_{code}_origin', cards2, note=f'{code} at CRVAL (0, 0)'))

cases.append(case('pc_rotation_lonpole', {
    'CTYPE1': 'RA---CAR', 'CTYPE2': 'DEC--CAR', 'CRPIX1': 40.0, 'CRPIX2': 60.0, 'CDELT1': -0.5, 'CDELT2': 0.5,
    'PC1_1': 0.8660254, 'PC1_2': -0.5, 'PC2_1': 0.5, 'PC2_2': 0.8660254, 'CRVAL1': 45.0, 'CRVAL2': -20.0,
    'LONPOLE': 170.0, 'LATPOLE': -60.0, 'RADESYS': 'ICRS'}, note='PC matrix, explicit LONPOLE/LATPOLE'))
cases.append(case('crota2', {
    'CTYPE1': 'RA---TAN', 'CTYPE2': 'DEC--TAN', 'CRPIX1': 50.0, 'CRPIX2': 50.0, 'CDELT1': -0.01, 'CDELT2': 0.01,
    'CROTA2': 33.0, 'CRVAL1': 280.0, 'CRVAL2': -65.0, 'RADESYS': 'ICRS'}, note='CDELT with CROTA2'))
cases.append(case('dec_first', {
    'CTYPE1': 'DEC--TAN', 'CTYPE2': 'RA---TAN', 'CRPIX1': 50.0, 'CRPIX2': 50.0, 'CDELT1': 0.01, 'CDELT2': -0.01,
    'CRVAL1': 10.0, 'CRVAL2': 200.0, 'RADESYS': 'ICRS'}, note='latitude on axis 1'))
cases.append(case('galactic', {
    'CTYPE1': 'GLON-TAN', 'CTYPE2': 'GLAT-TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 120.0, 'CRVAL2': 15.0}, note='galactic TAN, converted to ICRS'))
cases.append(case('galactic_car_allsky', {
    'CTYPE1': 'GLON-CAR', 'CTYPE2': 'GLAT-CAR', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -3.6, 'CDELT2': 1.8,
    'CRVAL1': 0.0, 'CRVAL2': 0.0}, note='all-sky galactic plate carree'))
cases.append(case('ecliptic', {
    'CTYPE1': 'ELON-TAN', 'CTYPE2': 'ELAT-TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 60.0, 'CRVAL2': -5.0}, note='ecliptic TAN'))
cases.append(case('fk5_j2000', {
    'CTYPE1': 'RA---TAN', 'CTYPE2': 'DEC--TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 83.6, 'CRVAL2': 22.0, 'RADESYS': 'FK5', 'EQUINOX': 2000.0}, note='FK5 J2000 -> ICRS (frame bias)'))
cases.append(case('fk5_j1975', {
    'CTYPE1': 'RA---TAN', 'CTYPE2': 'DEC--TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 83.6, 'CRVAL2': 22.0, 'RADESYS': 'FK5', 'EQUINOX': 1975.0}, note='FK5 J1975 -> ICRS (precession)'))
cases.append(case('fk4_b1950', {
    'CTYPE1': 'RA---TAN', 'CTYPE2': 'DEC--TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 83.6, 'CRVAL2': 22.0, 'RADESYS': 'FK4', 'EQUINOX': 1950.0}, note='FK4 B1950 -> ICRS'))
cases.append(case('equinox_only_1950', {
    'CTYPE1': 'RA---TAN', 'CTYPE2': 'DEC--TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 210.0, 'CRVAL2': -40.0, 'EQUINOX': 1950.0}, note='no RADESYS, EQUINOX 1950 means FK4'))
cases.append(case('no_radesys', {
    'CTYPE1': 'RA---TAN', 'CTYPE2': 'DEC--TAN', 'CRPIX1': 50.5, 'CRPIX2': 50.5, 'CDELT1': -0.05, 'CDELT2': 0.05,
    'CRVAL1': 210.0, 'CRVAL2': -40.0}, note='no RADESYS, no EQUINOX: ICRS'))

# Distortion headers shipped with astropy (also in ../reference.json, which has no inverse).
for f in ['irac_sip.hdr', 'tpvonly.hdr']:
    h = fits.Header.fromstring(open(os.path.join(here, '..', 'headers', f)).read())
    w = WCS(h)
    n1, n2 = h.get('NAXIS1', 256), h.get('NAXIS2', 256)
    g1 = np.linspace(0, n1 - 1, 7); g2 = np.linspace(0, n2 - 1, 7)
    pix = np.array([(x, y) for y in g2 for x in g1])
    world = w.all_pix2world(pix, 0)
    back = w.all_world2pix(world, 0, tolerance=1e-10, maxiter=100, quiet=True)
    cases.append(dict(name=f'file_{f}', note='header file from astropy tests', header_file='../headers/' + f,
                      pixel_0based=pix.tolist(), world_deg=world.tolist(), world2pix_0based=back.tolist()))

json.dump(dict(generator='make_wcs_reference.py with astropy ' + __import__('astropy').__version__,
               cases=cases), open(os.path.join(here, 'reference.json'), 'w'), indent=0)
print(len(cases), 'cases')
for c in cases:
    bad = sum(1 for p in c['world_deg'] if p[0] is None)
    print(c['name'], c.get('frame', c.get('frame_error', '')), 'offsky', bad)

#!/usr/bin/env python3
"""Generates the tile-compressed FITS fixtures of this directory and their reference answers.

    python make_fixtures.py        # needs astropy (8.0.2 was used) and numpy

Every fixture is written by astropy's CompImageHDU (cfitsio's compression code) and read back
by astropy; reference.json records, per file, the sha256 of the decompressed physical image as
row-major little-endian float64 with NaNs canonicalised (the conventions of
../reference.json), the NaN count and the shape. The images are small (tens of pixels, with
partial edge tiles) and deterministic (numpy default_rng seeds fixed below).
"""
import hashlib, json, os
import numpy as np
from astropy.io import fits

rng = np.random.default_rng(20261126)
here = os.path.dirname(os.path.abspath(__file__))


def sky(shape, base, noise, nstars=6):
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    img = base + noise * rng.standard_normal(shape)
    for _ in range(nstars):
        cx, cy = rng.uniform(0, shape[1]), rng.uniform(0, shape[0])
        img += rng.uniform(50, 5000) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.6 ** 2))
    return img


def sha(data):
    d = np.ascontiguousarray(data, dtype='<f8').copy()
    d[np.isnan(d)] = np.nan
    return hashlib.sha256(d.tobytes()).hexdigest()


cases = []


def case(name, data, note, header=None, **kw):
    path = os.path.join(here, name)
    hdu = fits.CompImageHDU(data, header=header, **kw)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True, checksum=True)
    with fits.open(path) as h:
        out = h[1].data
        phys = np.asarray(out, dtype=np.float64)
    cases.append(dict(file=name, hdu=1, note=note, shape_numpy=list(phys.shape),
                      n_nan=int(np.isnan(phys).sum()), sha256_f64le=sha(phys),
                      sum=float(np.nansum(phys))))


shape = (52, 70)  # 70 x 52 pixels: tiles of 16 x 16 leave partial edge tiles
i16 = np.round(sky(shape, 1000, 12)).clip(-32768, 32767).astype(np.int16)
u8 = np.round(sky(shape, 40, 5) / 30).clip(0, 255).astype(np.uint8)
i32 = np.round(sky(shape, 100000, 40) * 10).astype(np.int32)
u16 = np.round(sky(shape, 30000, 20)).clip(0, 65535).astype(np.uint16)
f32 = sky(shape, 500, 8).astype(np.float32)
f32[3, 5] = np.nan
f32[40, 60:66] = np.nan
f32z = f32.copy()
f32z[10, 10:14] = 0.0
f64 = sky(shape, 200, 3)
f64[7, 7] = np.nan
tiles = (16, 16)

for ct in ['RICE_1', 'GZIP_1', 'GZIP_2', 'HCOMPRESS_1', 'PLIO_1']:
    case(f'i16_{ct.lower()}.fits', i16, f'int16, {ct}, 16x16 tiles', compression_type=ct, tile_shape=tiles)
    case(f'i32_{ct.lower()}.fits', i32 // (1 if ct != 'PLIO_1' else 8), f'int32, {ct}, 16x16 tiles',
         compression_type=ct, tile_shape=tiles)
for ct in ['RICE_1', 'GZIP_1', 'GZIP_2', 'PLIO_1']:
    case(f'u8_{ct.lower()}.fits', u8, f'uint8, {ct}, 16x16 tiles', compression_type=ct, tile_shape=tiles)
case('u16_rice_1.fits', u16, 'uint16 (BZERO 32768), RICE_1, row tiles', compression_type='RICE_1')
h = fits.Header(); h['BLANK'] = -32768
i16b = i16.copy(); i16b[0, 0:3] = -32768
case('i16_blank_rice_1.fits', i16b, 'int16 with BLANK, RICE_1', header=h, compression_type='RICE_1', tile_shape=tiles)
for q in ['NO_DITHER', 'SUBTRACTIVE_DITHER_1', 'SUBTRACTIVE_DITHER_2']:
    for ct in ['RICE_1', 'GZIP_1', 'GZIP_2', 'HCOMPRESS_1']:
        data = f32z if q == 'SUBTRACTIVE_DITHER_2' else f32
        case(f'f32_{q.lower()}_{ct.lower()}.fits', data, f'float32 with NaNs, {q}, {ct}',
             compression_type=ct, quantize_method={'NO_DITHER': -1, 'SUBTRACTIVE_DITHER_1': 1,
                                                   'SUBTRACTIVE_DITHER_2': 2}[q],
             quantize_level=16.0, dither_seed=1234, tile_shape=tiles)
case('f64_dither1_rice_1.fits', f64, 'float64 with NaN, SUBTRACTIVE_DITHER_1, RICE_1', compression_type='RICE_1',
     quantize_method=1, quantize_level=8.0, dither_seed=42, tile_shape=tiles)
case('f32_lossless_gzip_2.fits', f32, 'float32 lossless (no quantization), GZIP_2', compression_type='GZIP_2',
     quantize_level=0.0, tile_shape=tiles)
case('i16_hcompress_scale_smooth.fits', i16, 'int16 HCOMPRESS_1 lossy, scale 2.5, smoothing',
     compression_type='HCOMPRESS_1', hcomp_scale=2.5, hcomp_smooth=True, tile_shape=tiles)
i64 = (i32.astype(np.int64) * 100000)
case('i64_gzip_1.fits', i64, 'int64, GZIP_1', compression_type='GZIP_1', tile_shape=tiles)
cube = np.stack([i16, i16 // 2, i16 // 3])
case('i16_cube_rice_1.fits', cube, 'int16 cube 70x52x3, RICE_1, one tile per plane row', compression_type='RICE_1')

json.dump(dict(generator='make_fixtures.py with astropy ' + __import__('astropy').__version__,
               conventions='as ../reference.json: physical values as float64, row-major, NaN canonical',
               images=cases), open(os.path.join(here, 'reference.json'), 'w'), indent=1)
print(len(cases), 'fixtures')

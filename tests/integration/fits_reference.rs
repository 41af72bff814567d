//! The FITS reader and the WCS against astropy's answers: the physical pixels hash to the
//! same sha256 (row-major little-endian float64, NaN canonical) as astropy.io.fits gives,
//! and pixel → sky agrees with astropy.wcs within 1 milliarcsecond.

use super::helpers::data_dir;
use astropipe::fits::FitsFile;
use astropipe::wcs::Wcs;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn load(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn physical_sha256(f: &FitsFile, hdu: usize) -> (String, usize, usize) {
    let h = f.hdu(hdu).unwrap();
    let dims = f.image_dims(h).unwrap().expect("an image HDU");
    let (_, _, planes) = dims.plane_shape().unwrap();
    let mut hasher = Sha256::new();
    let (mut n, mut n_nan) = (0, 0);
    for p in 0..planes {
        let img = f.read_plane::<f64>(h, p).unwrap();
        for v in img.pixels {
            let v = if v.is_nan() { f64::NAN } else { v };
            if v.is_nan() {
                n_nan += 1;
            }
            n += 1;
            hasher.update(v.to_le_bytes());
        }
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (hex, n, n_nan)
}

/// Checks every image of a reference file; returns how many were checked.
fn check_pixels(reference: &Value, dir: &std::path::Path) -> usize {
    let mut checked = 0;
    for im in reference["images"].as_array().unwrap() {
        let file = im["file"].as_str().unwrap();
        let hdu = im["hdu"].as_u64().unwrap() as usize;
        let f = FitsFile::open(&dir.join(file)).unwrap();
        let (sha, n, n_nan) = physical_sha256(&f, hdu);
        let stats = if im.get("stats").is_some() {
            &im["stats"]
        } else {
            im
        };
        assert_eq!(
            sha,
            stats["sha256_f64le"].as_str().unwrap(),
            "{file}[{hdu}] sha256"
        );
        if let Some(expected) = stats.get("n").and_then(Value::as_u64) {
            assert_eq!(n as u64, expected, "{file}[{hdu}] n (pixels)");
        }
        assert_eq!(
            n_nan as u64,
            stats["n_nan"].as_u64().unwrap(),
            "{file}[{hdu}] n_nan"
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_reference_image_matches_astropy_bit_for_bit() {
    // Plain, scaled, BLANK, cube, gzip and tile-compressed (RICE_1, GZIP_1, dithered floats).
    let checked = check_pixels(&load(&data_dir().join("reference.json")), &data_dir());
    assert_eq!(checked, 14);
}

#[test]
fn every_codec_and_quantization_matches_astropy_bit_for_bit() {
    // RICE_1, GZIP_1, GZIP_2, HCOMPRESS_1 (lossless, and lossy with smoothing), PLIO_1 on
    // 8/16/32/64-bit integers, quantized floats with each dither method, lossless floats,
    // BLANK, BZERO, a cube; partial edge tiles everywhere (70 x 52 pixels in 16 x 16 tiles).
    let dir = data_dir().join("compressed");
    let checked = check_pixels(&load(&dir.join("reference.json")), &dir);
    assert_eq!(checked, 33);
}

fn sep_mas(a: (f64, f64), b: (f64, f64)) -> f64 {
    astropipe_udfs::sphere::ang_sep_deg(a.0, a.1, b.0, b.1) * 3.6e6
}

#[test]
fn pixel_to_sky_of_the_sample_files_matches_astropy_within_a_milliarcsecond() {
    let r = load(&data_dir().join("reference.json"));
    let mut checked = 0;
    for im in r["images"].as_array().unwrap() {
        let Some(w) = im.get("wcs").filter(|w| !w.is_null()) else {
            continue;
        };
        let file = im["file"].as_str().unwrap();
        let hdu = im["hdu"].as_u64().unwrap() as usize;
        let f = FitsFile::open(&data_dir().join(file)).unwrap();
        let wcs = Wcs::from_header(&f.hdu(hdu).unwrap().header)
            .unwrap_or_else(|e| panic!("{file}[{hdu}]: {e}"));
        for (p, q) in w["pixel_0based"]
            .as_array()
            .unwrap()
            .iter()
            .zip(w["world_deg"].as_array().unwrap())
        {
            let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            let got = wcs.pix2world(x, y).expect("on the sky");
            let want = (q[0].as_f64().unwrap(), q[1].as_f64().unwrap());
            assert!(
                sep_mas(got, want) < 1.0,
                "{file}[{hdu}] ({x}, {y}): {got:?} vs {want:?}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 7, "every image with a celestial WCS");
}

/// A header file of 80-character cards (no newlines), as astropy's test headers.
fn header_file(path: &std::path::Path) -> astropipe::fits::Header {
    astropipe::fits::file::parse_header_cards(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_projection_frame_and_distortion_matches_astropy() {
    let dir = data_dir().join("wcs");
    let r = load(&dir.join("reference.json"));
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let header = match case.get("header_file").and_then(Value::as_str) {
            Some(f) => header_file(&dir.join(f)),
            None => {
                let cards: String = case["header"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                astropipe::fits::file::parse_header_cards(cards.as_bytes()).unwrap()
            }
        };
        let wcs = match Wcs::from_header(&header) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let pix = case["pixel_0based"].as_array().unwrap();
        let world = case["world_deg"].as_array().unwrap();
        let icrs = case.get("icrs_deg").and_then(Value::as_array);
        let back = case["world2pix_0based"].as_array().unwrap();
        for (i, p) in pix.iter().enumerate() {
            let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            // astropy answers in axis order: (lat, lng) when latitude is axis 1.
            let got = wcs
                .pix2world(x, y)
                .map(|(l, b)| if wcs.lat_first() { (b, l) } else { (l, b) });
            match (got, world[i][0].as_f64()) {
                (None, None) => continue,
                (Some(g), None) => failures.push(format!(
                    "{name} ({x}, {y}): {g:?}, astropy says off the sky"
                )),
                (None, Some(_)) => failures.push(format!(
                    "{name} ({x}, {y}): off the sky, astropy has {:?}",
                    world[i]
                )),
                (Some(g), Some(a)) => {
                    let want = (a, world[i][1].as_f64().unwrap());
                    if sep_mas(g, want) >= 1.0 {
                        failures.push(format!(
                            "{name} ({x}, {y}): {g:?} vs {want:?} ({:.3} mas)",
                            sep_mas(g, want)
                        ));
                    }
                    if let Some(icrs) = icrs {
                        let want = (icrs[i][0].as_f64().unwrap(), icrs[i][1].as_f64().unwrap());
                        let (l, b) = if wcs.lat_first() { (g.1, g.0) } else { g };
                        let got = wcs.frame.to_icrs(l, b);
                        if sep_mas(got, want) >= 1.0 {
                            failures.push(format!(
                                "{name} ICRS ({x}, {y}): {got:?} vs {want:?} ({:.3} mas)",
                                sep_mas(got, want)
                            ));
                        }
                    }
                    if let (Some(bx), Some(by)) = (back[i][0].as_f64(), back[i][1].as_f64()) {
                        let (l, b) = if wcs.lat_first() { (g.1, g.0) } else { g };
                        match wcs.world2pix(l, b) {
                            Some((px, py)) if (px - bx).abs() < 1e-6 && (py - by).abs() < 1e-6 => {}
                            other => failures
                                .push(format!("{name} world2pix {g:?}: {other:?} vs ({bx}, {by})")),
                        }
                    }
                }
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 67);
}

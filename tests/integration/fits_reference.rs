//! The FITS reader and the WCS against astropy's answers (tests/data/reference.json): the
//! physical pixels hash to the same sha256 (row-major little-endian float64, NaN canonical),
//! and pixel → sky agrees within 1 milliarcsecond, for every uncompressed image in the file
//! whose projection we implement.

use super::helpers::data_dir;
use astropipe::fits::{FitsFile, ImageLayout};
use astropipe::wcs::Wcs;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join("reference.json")).unwrap()).unwrap()
}

fn physical_sha256(f: &FitsFile, hdu: usize) -> (String, usize, usize) {
    let h = f.hdu(hdu).unwrap();
    let layout = ImageLayout::from_hdu(&f.path, h).unwrap();
    let (_, _, planes) = layout.plane_shape().unwrap();
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

#[test]
fn uncompressed_pixels_match_astropy_bit_for_bit() {
    let r = reference();
    let mut checked = 0;
    for im in r["images"].as_array().unwrap() {
        if im.get("compressed").and_then(Value::as_bool) == Some(true) {
            continue; // tile compression: not decoded yet
        }
        let file = im["file"].as_str().unwrap();
        let hdu = im["hdu"].as_u64().unwrap() as usize;
        let f = FitsFile::open(&data_dir().join(file)).unwrap();
        let (sha, n, n_nan) = physical_sha256(&f, hdu);
        let stats = &im["stats"];
        assert_eq!(
            sha,
            stats["sha256_f64le"].as_str().unwrap(),
            "{file}[{hdu}] sha256"
        );
        assert_eq!(
            (n - n_nan) as u64,
            stats["n"].as_u64().unwrap(),
            "{file}[{hdu}] n"
        );
        assert_eq!(
            n_nan as u64,
            stats["n_nan"].as_u64().unwrap(),
            "{file}[{hdu}] n_nan"
        );
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} images checked");
}

#[test]
fn pixel_to_sky_matches_astropy_within_a_milliarcsecond() {
    let r = reference();
    let mut checked = 0;
    for im in r["images"].as_array().unwrap() {
        let Some(w) = im.get("wcs").filter(|w| !w.is_null()) else {
            continue;
        };
        let file = im["file"].as_str().unwrap();
        let hdu = im["hdu"].as_u64().unwrap() as usize;
        let f = FitsFile::open(&data_dir().join(file)).unwrap();
        let header = &f.hdu(hdu).unwrap().header;
        let wcs = match Wcs::from_header(header) {
            Ok(w) => w,
            // Compressed HDUs carry the WCS in the table header too; skip only what we cannot read.
            Err(e) => panic!("{file}[{hdu}]: {e}"),
        };
        let pix = w["pixel_0based"].as_array().unwrap();
        let world = w["world_deg"].as_array().unwrap();
        for (p, q) in pix.iter().zip(world) {
            let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            let (ra, dec) = wcs.pix2world(x, y).expect("on the sky");
            let (rra, rdec) = (q[0].as_f64().unwrap(), q[1].as_f64().unwrap());
            let sep = astropipe_udfs::sphere::ang_sep_deg(ra, dec, rra, rdec) * 3.6e6;
            assert!(
                sep < 1.0,
                "{file}[{hdu}] pixel ({x}, {y}): {sep} mas off ({ra}, {dec}) vs ({rra}, {rdec})"
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} WCS checked");
}

//! `astropipe preview`: a real PNG (checked chunk by chunk, CRCs and all, and inflated) of
//! the right size, with detections circled in green and cosmic-ray hits in red.

use super::helpers::{Scratch, astropipe_ok, data_dir};
use astropipe::image::png::Crc32;
use std::io::Read;

/// Width, height and RGB pixels of an 8-bit RGB PNG with filter 0 rows (what we write).
fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (mut pos, mut w, mut h, mut idat) = (8, 0, 0, Vec::new());
    while pos < png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &png[pos + 4..pos + 8];
        let data = &png[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(png[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        let mut c = Crc32::new();
        c.update(kind);
        c.update(data);
        assert_eq!(c.finish(), crc, "CRC of {}", String::from_utf8_lossy(kind));
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw.len(), h * (1 + 3 * w));
    let rgb = raw
        .chunks_exact(1 + 3 * w)
        .flat_map(|row| {
            assert_eq!(row[0], 0, "filter type 0");
            row[1..].to_vec()
        })
        .collect();
    (w, h, rgb)
}

fn count(rgb: &[u8], colour: [u8; 3]) -> usize {
    rgb.chunks_exact(3).filter(|p| *p == colour).count()
}

#[test]
fn preview_draws_detections_and_cosmic_rays() {
    let s = Scratch::new("preview");
    let out = s.path("gmos.png");
    let gmos = data_dir().join("gmos.fits");
    let msg = astropipe_ok(
        &[],
        &[
            "preview",
            &gmos.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
    );
    assert!(msg.contains("HDU 1"), "{msg}");
    let (w, h, rgb) = decode(&std::fs::read(&out).unwrap());
    assert_eq!((w, h), (200, 150));
    assert!(
        count(&rgb, [255, 30, 30]) > 50,
        "cosmic rays are painted red"
    );
    let circled = count(&rgb, [40, 220, 60]) + count(&rgb, [240, 220, 40]);
    assert!(circled > 20, "detections are circled");
    // Grey elsewhere, and not all one level: the stretch shows structure.
    let greys: std::collections::HashSet<u8> = rgb
        .chunks_exact(3)
        .filter(|p| p[0] == p[1] && p[1] == p[2])
        .map(|p| p[0])
        .collect();
    assert!(greys.len() > 50, "{} grey levels", greys.len());

    // A larger frame is binned down to --max-size.
    let big = s.path("sep.png");
    let frame = super::helpers::repo_root().join("tests/golden/sep_frame.fits.gz");
    astropipe_ok(
        &[],
        &[
            "preview",
            &frame.display().to_string(),
            "--out",
            &big.display().to_string(),
            "--max-size",
            "256",
        ],
    );
    let (w, h, _) = decode(&std::fs::read(&big).unwrap());
    assert_eq!((w, h), (256, 256));
}

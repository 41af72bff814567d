//! `astropipe preview`: a real PNG (read back by the `png` crate's decoder, CRCs and all) of
//! the right size, with detections circled in green and cosmic-ray hits in red.

use super::helpers::{Scratch, astropipe_ok, data_dir};

/// Width, height and RGB pixels of an 8-bit RGB PNG, read by the `png` crate's decoder
/// (which checks every chunk's CRC and the zlib stream).
fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("a valid PNG header");
    let mut rgb = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut rgb).expect("valid PNG data");
    assert_eq!(
        (frame.color_type, frame.bit_depth),
        (png::ColorType::Rgb, png::BitDepth::Eight),
        "8-bit RGB"
    );
    rgb.truncate(frame.buffer_size());
    (frame.width as usize, frame.height as usize, rgb)
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

//! Fuzzes the FITS reader: header parsing and HDU listing, checksums, WCS construction, pixel
//! decoding (plain and every tile codec), and the codecs fed raw bytes directly.
#![no_main]

use astropipe::fits::FitsFile;
use astropipe::fits::codecs::{hcompress, plio, rice};
use astropipe::wcs::Wcs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The codecs on their own, selected by the first byte.
    if let Some((&sel, rest)) = data.split_first() {
        let n = 1 + (sel as usize % 64) * 17;
        match sel % 4 {
            0 => {
                let mut out = Vec::new();
                let _ = rice::decode(rest, n, [1, 2, 4][sel as usize % 3], 32, &mut out);
            }
            1 => {
                let _ = plio::decode(rest, n);
            }
            2 => {
                let _ = hcompress::decode(rest, sel & 0x10 != 0, (n % 40 + 1, n % 23 + 1));
            }
            _ => {}
        }
    }
    // The whole reader.
    if let Ok(f) = FitsFile::from_bytes("fuzz.fits".into(), data.to_vec()) {
        for h in &f.hdus {
            let _ = f.verify_checksum(h);
            if let Ok(w) = Wcs::from_header(&h.header) {
                let _ = w.pix2world(1.5, -2.0);
                let _ = w.world2pix(10.0, 20.0);
            }
            if let Ok(Some(d)) = f.image_dims(h)
                && d.n_pixels().is_some_and(|n| n <= 1 << 22)
            {
                let _ = f.read_plane::<f32>(h, 0);
            }
        }
    }
});

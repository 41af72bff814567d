//! FITS read timings for `benches/fits_vs_astropy.py` (which runs astropy on the same files in
//! the same run and prints the ratios). Usage: `cargo bench --bench fits_read -- DIR`, where
//! DIR holds `synthetic_4096.fits` and `synthetic_4096_rice.fits`. Prints JSON: median
//! seconds over the repetitions for each way of reading.

use astropipe::fits::FitsFile;
use astropipe::fits::file::open_headers;
use astropipe::fits::image::read_plane_from_file;
use std::path::PathBuf;
mod common;

use common::*;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to time then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir: Option<PathBuf> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from);
    let Some(dir) = dir else {
        eprintln!("usage: cargo bench --bench fits_read -- DIR (see benches/fits_vs_astropy.py)");
        return;
    };
    let reps = 9;
    let plain = dir.join("synthetic_4096.fits");
    let rice = dir.join("synthetic_4096_rice.fits");
    let (t_direct, n1) = time(reps, || {
        let (hdus, _) = open_headers(&plain).expect("headers");
        read_plane_from_file::<f32>(&plain, &hdus[0], 0)
            .expect("pixels")
            .pixels
            .len()
    });
    let (t_memory, n2) = time(reps, || {
        let f = FitsFile::open(&plain).expect("file");
        f.read_plane::<f32>(&f.hdus[0], 0)
            .expect("pixels")
            .pixels
            .len()
    });
    let (t_rice, n3) = time(reps, || {
        let f = FitsFile::open(&rice).expect("file");
        f.read_plane::<f32>(&f.hdus[1], 0)
            .expect("pixels")
            .pixels
            .len()
    });
    assert_eq!((n1, n2, n3), (4096 * 4096, 4096 * 4096, 4096 * 4096));
    println!(
        "{{\"read_uncompressed_direct\": {t_direct}, \"read_uncompressed_in_memory\": {t_memory}, \"read_rice\": {t_rice}, \"threads\": {}}}",
        rayon::current_num_threads()
    );
}

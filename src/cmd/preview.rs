//! `astropipe preview`: one image asinh-stretched, detections circled, cosmic rays in red.

use super::CmdError;
use crate::cli::PreviewArgs;
use crate::config::FileConfig;
use crate::fits::FitsFile;
use crate::fits::keywords::Keywords;

pub fn run(file: &FileConfig, a: PreviewArgs) -> Result<(), CmdError> {
    let f = FitsFile::open(&a.file)?;
    let hdu = match a.hdu {
        Some(i) => f.hdu(i)?,
        None => f
            .hdus
            .iter()
            .find(|h| matches!(f.image_dims(h), Ok(Some(d)) if d.n_pixels().unwrap_or(0) > 0))
            .ok_or_else(|| CmdError::Usage(format!("{}: no image HDU", a.file.display())))?,
    };
    let img = f.read_plane::<f32>(hdu, 0)?;
    let kw = Keywords {
        hdu: &hdu.header,
        primary: if hdu.index == 0 {
            None
        } else {
            f.hdus.first().map(|h| &h.header)
        },
    };
    let opts = crate::ingest::pipeline::options_for(&file.extract(&a.extract)?, &kw);
    let ex = crate::image::extract(img.pixels.clone(), img.width, img.height, &opts);
    let pic = crate::image::preview::render(
        &img.pixels,
        img.width,
        img.height,
        &ex,
        ex.cosmic_mask.as_deref(),
        a.max_size,
    );
    let png = pic.to_png();
    std::fs::write(&a.out, png)?;
    println!(
        "{}: HDU {}, {}x{} -> {}x{} picture, {} sources circled, {} cosmic-ray pixels in red",
        a.out.display(),
        hdu.index,
        img.width,
        img.height,
        pic.width,
        pic.height,
        ex.sources.len(),
        ex.cosmic_ray_pixels
    );
    Ok(())
}

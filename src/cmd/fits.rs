//! `astropipe fits info|stats|pix2sky`: what a FITS file holds, for people (text) and scripts
//! (JSON, with the conventions of astropy's reference answers: physical values in float64,
//! 0-based pixels, world coordinates in axis order as `all_pix2world` gives them).

use super::{CmdError, print_json_or};
use crate::cli::FitsCommand;
use crate::fits::{FitsError, FitsFile, Hdu, HduKind, Header};
use crate::wcs::Wcs;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn run(cmd: FitsCommand) -> Result<(), CmdError> {
    match cmd {
        FitsCommand::Info { file, json } => {
            let f = FitsFile::open(&file)?;
            print_json_or(&info(&f), json, info_text);
        }
        FitsCommand::Stats { file, hdu, json } => {
            let f = FitsFile::open(&file)?;
            print_json_or(&stats(&f, hdu)?, json, |v| {
                let keys = [
                    "n",
                    "n_nan",
                    "sum",
                    "mean",
                    "median",
                    "min",
                    "max",
                    "std",
                    "sha256_f64le",
                ];
                keys.iter()
                    .map(|k| format!("{k:>13}: {}\n", v[k]))
                    .collect()
            });
        }
        FitsCommand::Pix2sky {
            file,
            hdu,
            json,
            coords,
        } => {
            if coords.len() % 2 != 0 {
                return Err(CmdError::Usage(
                    "pixel coordinates come in pairs: X Y [X Y ...]".into(),
                ));
            }
            let header = header_for(&file, hdu)?;
            let pts: Vec<(f64, f64)> = coords.chunks(2).map(|c| (c[0], c[1])).collect();
            print_json_or(&pix2sky(&header, &pts)?, json, |v| {
                let mut s = String::new();
                for (p, w) in v["pixel_0based"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(v["world_deg"].as_array().into_iter().flatten())
                {
                    s.push_str(&format!("{} {} -> {} {}\n", p[0], p[1], w[0], w[1]));
                }
                s
            });
        }
    }
    Ok(())
}

/// One HDU's description.
fn hdu_info(file: &FitsFile, hdu: &Hdu) -> Value {
    let dims = file.image_dims(hdu);
    let (bitpix, naxes, compression, error) = match &dims {
        Ok(Some(d)) => (Some(d.bitpix.value()), d.axes.clone(), d.compression, None),
        Ok(None) => (
            hdu.header.i64("BITPIX"),
            (1..=hdu.header.i64("NAXIS").unwrap_or(0).clamp(0, 999))
                .map(|i| hdu.header.i64(&format!("NAXIS{i}")).unwrap_or(0).max(0) as usize)
                .collect(),
            None,
            None,
        ),
        Err(e) => (
            hdu.header.i64("BITPIX"),
            Vec::new(),
            None,
            Some(e.to_string()),
        ),
    };
    let ctypes: Vec<String> = (1..=9)
        .filter_map(|i| {
            hdu.header
                .str(&format!("CTYPE{i}"))
                .map(|s| s.trim().to_string())
        })
        .collect();
    let wcs = Wcs::from_header(&hdu.header);
    let mut v = json!({
        "index": hdu.index,
        "type": hdu.kind.as_str(),
        "extname": hdu.header.str("EXTNAME"),
        "bitpix": bitpix,
        "naxes": naxes,
        "compression": compression,
        "ctype": ctypes,
        "wcs": match &wcs { Ok(w) => json!({"projection": w.code, "frame": w.frame.name(), "sip": w.has_sip()}), Err(_) => Value::Null },
        "checksum": file.verify_checksum(hdu).as_str(),
    });
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    v
}

/// Every HDU of a file.
fn info(file: &FitsFile) -> Value {
    json!({
        "file": file.path,
        "bytes": file.bytes.len(),
        "hdus": file.hdus.iter().map(|h| hdu_info(file, h)).collect::<Vec<_>>(),
        "error": file.trailing_error.as_ref().map(|e| e.to_string()),
    })
}

/// Text rendering of [`info`].
fn info_text(v: &Value) -> String {
    let mut s = format!(
        "{} ({} bytes)\n",
        v["file"].as_str().unwrap_or(""),
        v["bytes"]
    );
    s.push_str(&format!(
        "{:>3}  {:<17} {:>6}  {:<18} {:<12} {:<26} {}\n",
        "HDU", "type", "BITPIX", "axes", "compression", "WCS", "checksum"
    ));
    for h in v["hdus"].as_array().into_iter().flatten() {
        let axes: Vec<String> = h["naxes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.to_string())
            .collect();
        let wcs = h["ctype"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",");
        s.push_str(&format!(
            "{:>3}  {:<17} {:>6}  {:<18} {:<12} {:<26} {}\n",
            h["index"],
            h["type"].as_str().unwrap_or(""),
            h["bitpix"]
                .as_i64()
                .map(|b| b.to_string())
                .unwrap_or_default(),
            if axes.is_empty() {
                "-".to_string()
            } else {
                axes.join("x")
            },
            h["compression"].as_str().unwrap_or("-"),
            if wcs.is_empty() { "-".to_string() } else { wcs },
            h["checksum"].as_str().unwrap_or(""),
        ));
        if let Some(e) = h["error"].as_str() {
            s.push_str(&format!("     error: {e}\n"));
        }
    }
    if let Some(e) = v["error"].as_str() {
        s.push_str(&format!("error after the last HDU: {e}\n"));
    }
    s
}

/// Statistics of the physical values of an image HDU (all planes), NaN/BLANK ignored.
fn stats(file: &FitsFile, index: usize) -> Result<Value, FitsError> {
    let hdu = file.hdu(index)?;
    let dims = file.image_dims(hdu)?.ok_or(FitsError::NotImage {
        path: file.path.clone(),
        hdu: index,
    })?;
    let (_, _, planes) = dims.plane_shape().unwrap_or((0, 0, 0));
    let mut hasher = Sha256::new();
    let mut values: Vec<f64> = Vec::new();
    let (mut n, mut n_nan) = (0usize, 0usize);
    for p in 0..planes {
        let img = file.read_plane::<f64>(hdu, p)?;
        for v in img.pixels {
            n += 1;
            if v.is_nan() {
                n_nan += 1;
                hasher.update(f64::NAN.to_le_bytes());
            } else {
                hasher.update(v.to_le_bytes());
                values.push(v);
            }
        }
    }
    let sha: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let count = values.len();
    let (sum, mean, std, min, max, median) = if count == 0 {
        (0.0, f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN)
    } else {
        let sum = neumaier_sum(values.iter().copied());
        let mean = sum / count as f64;
        let var = neumaier_sum(values.iter().map(|v| (v - mean) * (v - mean))) / count as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mid = count / 2;
        let (_, m, _) = values.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
        let m = *m;
        let median = if count % 2 == 1 {
            m
        } else {
            let lower = values[..mid]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            0.5 * (lower + m)
        };
        (sum, mean, var.sqrt(), min, max, median)
    };
    let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    Ok(json!({
        "file": file.path,
        "hdu": index,
        "naxes": dims.axes,
        "n": n,
        "n_nan": n_nan,
        "sum": num(sum),
        "mean": num(mean),
        "median": num(median),
        "min": num(min),
        "max": num(max),
        "std": num(std),
        "sha256_f64le": sha,
    }))
}

/// Compensated (Neumaier) summation: exact to the last bit for ordinary image sums.
fn neumaier_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    sum + c
}

/// World coordinates of 0-based pixels, in the WCS's own frame and in axis order (as
/// astropy's `all_pix2world(pix, 0)`), null off the sky.
fn pix2sky(header: &Header, pixels: &[(f64, f64)]) -> Result<Value, crate::wcs::WcsError> {
    let wcs = Wcs::from_header(header)?;
    let world: Vec<Value> = pixels
        .iter()
        .map(|&(x, y)| match wcs.pix2world(x, y) {
            Some((l, b)) if wcs.lat_first() => json!([b, l]),
            Some((l, b)) => json!([l, b]),
            None => json!([null, null]),
        })
        .collect();
    Ok(json!({
        "ctype": wcs.ctype,
        "frame": wcs.frame.name(),
        "pixel_0based": pixels.iter().map(|&(x, y)| json!([x, y])).collect::<Vec<_>>(),
        "world_deg": world,
    }))
}

/// The header to use for pix2sky: a bare `.hdr` file, or HDU `index` of a FITS file.
fn header_for(path: &std::path::Path, index: Option<usize>) -> Result<Header, CmdError> {
    let bytes = std::fs::read(path).map_err(|source| FitsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let is_hdr = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("hdr"));
    if is_hdr {
        return crate::fits::file::parse_header_cards(&bytes).map_err(|message| {
            FitsError::Header {
                path: path.display().to_string(),
                hdu: 0,
                message: message.0,
            }
            .into()
        });
    }
    let f = FitsFile::from_bytes(path.display().to_string(), bytes)?;
    let i = match index {
        Some(i) => i,
        // The first HDU with a celestial WCS, else the first image.
        None => f
            .hdus
            .iter()
            .find(|h| Wcs::from_header(&h.header).is_ok())
            .or_else(|| {
                f.hdus.iter().find(|h| {
                    matches!(
                        h.kind,
                        HduKind::Primary | HduKind::Image | HduKind::CompressedImage
                    )
                })
            })
            .map(|h| h.index)
            .unwrap_or(0),
    };
    Ok(f.hdu(i)?.header.clone())
}

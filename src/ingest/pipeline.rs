//! The per-image pipeline: FITS bytes → image planes → extraction → astrometry → catalog rows.
//! One rayon task per image HDU.

use crate::catalog::schema::{ExposureRow, SourceRow};
use crate::fits::keywords::{Keywords, mjd_to_unix_us};
use crate::fits::{FitsError, FitsFile, Hdu};
use crate::image::{self, ExtractOptions, flags, quality};
use crate::wcs::Wcs;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Why an HDU was not processed.
#[derive(Debug, Clone, PartialEq)]
pub struct HduProblem {
    pub hdu: usize,
    pub reason: String,
}

/// What one input file produced.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub exposures: Vec<ExposureRow>,
    pub sources: Vec<SourceRow>,
    /// Image HDUs that could not be processed.
    pub failed: Vec<HduProblem>,
    /// Problems that did not stop the file (e.g. a damaged HDU after good ones).
    pub warnings: Vec<String>,
    /// HDUs whose CHECKSUM or DATASUM does not verify (warnings, or failures with --strict).
    pub checksum_mismatches: Vec<HduProblem>,
}

/// Hex SHA-256 of a file's bytes: the identity of an input.
pub fn content_hash(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stable exposure id: 63 bits of SHA-256 over the file hash, the HDU index and, for the
/// planes of a data cube, the plane index.
pub fn exposure_id(file_sha256: &str, hdu: usize, plane: Option<usize>) -> i64 {
    let key = match plane {
        None => format!("{file_sha256}:{hdu}"),
        Some(p) => format!("{file_sha256}:{hdu}:{p}"),
    };
    let d = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 1) as i64
}

/// The rows of one processed HDU: one exposure (with its sources) per image plane; empty for
/// HDUs without an image.
type HduRows = Vec<(ExposureRow, Vec<SourceRow>, Vec<String>)>;

/// Processes every image HDU of a parsed file.
pub fn process_file(
    file: &FitsFile,
    file_uri: &str,
    file_sha256: &str,
    opts: &ExtractOptions,
) -> FileOutcome {
    let mut out = FileOutcome::default();
    if let Some(e) = &file.trailing_error {
        out.warnings.push(e.to_string());
    }
    for hdu in &file.hdus {
        let status = file.verify_checksum(hdu);
        if status.is_mismatch() {
            out.checksum_mismatches.push(HduProblem {
                hdu: hdu.index,
                reason: format!(
                    "{}: the file is damaged or was modified after it was written",
                    status.as_str()
                ),
            });
        }
    }
    let primary = file.hdus.first().map(|h| &h.header);
    let results: Vec<(usize, Result<HduRows, FitsError>)> = file
        .hdus
        .par_iter()
        .map(|hdu| {
            let r = process_hdu(file, hdu, primary, file_uri, file_sha256, opts);
            (hdu.index, r)
        })
        .collect();
    for (hdu, r) in results {
        match r {
            Ok(rows) => {
                for (e, s, w) in rows {
                    out.exposures.push(e);
                    out.sources.extend(s);
                    out.warnings.extend(w);
                }
            }
            Err(e) => out.failed.push(HduProblem {
                hdu,
                reason: e.to_string(),
            }),
        }
    }
    out
}

/// Processes every plane of one HDU; nothing for HDUs that hold no image (tables, NAXIS = 0).
fn process_hdu(
    file: &FitsFile,
    hdu: &Hdu,
    primary: Option<&crate::fits::Header>,
    file_uri: &str,
    file_sha256: &str,
    opts: &ExtractOptions,
) -> Result<HduRows, FitsError> {
    let Some(dims) = file.image_dims(hdu)? else {
        return Ok(Vec::new());
    };
    if dims.n_pixels() == Some(0) {
        return Ok(Vec::new());
    }
    let (_, _, planes) = dims.plane_shape().ok_or_else(|| FitsError::Unsupported {
        path: file.path.clone(),
        hdu: hdu.index,
        what: format!("a {}-dimensional image", dims.axes.len()),
    })?;
    (0..planes)
        .map(|plane| {
            let p = (planes > 1).then_some(plane);
            process_plane(file, hdu, p, primary, file_uri, file_sha256, opts)
        })
        .collect()
}

/// Processes one image plane (`plane` is `None` for a plain 2-D image).
fn process_plane(
    file: &FitsFile,
    hdu: &Hdu,
    plane: Option<usize>,
    primary: Option<&crate::fits::Header>,
    file_uri: &str,
    file_sha256: &str,
    opts: &ExtractOptions,
) -> Result<(ExposureRow, Vec<SourceRow>, Vec<String>), FitsError> {
    let data = file.read_plane::<f32>(hdu, plane.unwrap_or(0))?;
    let (width, height) = (data.width, data.height);
    let kw = Keywords {
        hdu: &hdu.header,
        primary: if hdu.index == 0 { None } else { primary },
    };
    let ex_opts = options_for(opts, &kw);
    // Calibration (`--calib`): saturation is judged on the raw pixels, before the masters
    // change the levels; the trim offset maps positions back to the raw frame's WCS.
    let (mut pixels, mut width, mut height) = (data.pixels, width, height);
    let mut saturated = ex_opts
        .saturation
        .map(|level| image::saturation_mask(&pixels, level));
    let mut applied = crate::calib::Applied::default();
    if let Some(lib) = &ex_opts.calib {
        let raw_width = width;
        let mut frame = crate::calib::frames::Frame {
            path: file.path.clone(),
            width,
            height,
            pixels,
            info: crate::calib::frames::FrameInfo::from_keywords(&kw),
            origin: (0, 0),
            steps: Vec::new(),
        };
        applied = lib
            .0
            .apply(&mut frame, &hdu.header)
            .map_err(|message| FitsError::Header {
                path: file.path.clone(),
                hdu: hdu.index,
                message,
            })?;
        (pixels, width, height) = (frame.pixels, frame.width, frame.height);
        let (ox, oy) = frame.origin;
        saturated = saturated.map(|m| {
            (oy..oy + height)
                .flat_map(|y| m[y * raw_width + ox..y * raw_width + ox + width].to_vec())
                .collect()
        });
    }
    let mut extraction = image::extract_with_mask(pixels, width, height, &ex_opts, saturated);
    let (ox, oy) = (applied.origin.0 as f64, applied.origin.1 as f64);
    for s in &mut extraction.sources {
        s.m.x += ox;
        s.m.y += oy;
        s.m.x_win += ox;
        s.m.y_win += oy;
    }
    let q = quality::quality(&extraction);
    let (wcs, wcs_status) = match Wcs::from_header(&hdu.header) {
        Ok(w) => (Some(w), "ok".to_string()),
        Err(e) => (None, e.to_string()),
    };
    let exposure_id = exposure_id(file_sha256, hdu.index, plane);
    let mjd = kw.mjd_obs();
    let filter = kw.filter();
    let zp = kw.zero_point();
    let sky = |x: f64, y: f64| wcs.as_ref().and_then(|w| w.pix2icrs(x, y));
    let (wf, hf) = (width as f64 + ox, height as f64 + oy);
    let corners = [
        (ox, oy),
        (wf - 1.0, oy),
        (wf - 1.0, hf - 1.0),
        (ox, hf - 1.0),
    ];
    let footprint = corners
        .iter()
        .map(|&(x, y)| sky(x, y))
        .collect::<Option<Vec<_>>>()
        .map(|v| [v[0], v[1], v[2], v[3]]);
    let centre = sky((wf - 1.0 + ox) / 2.0, (hf - 1.0 + oy) / 2.0);
    let scale = wcs
        .as_ref()
        .and_then(|w| local_jacobian(w, (wf - 1.0 + ox) / 2.0, (hf - 1.0 + oy) / 2.0))
        .map(|j| (j[0][0] * j[1][1] - j[0][1] * j[1][0]).abs().sqrt() * 3600.0);
    let limiting_mag = zp.map(|zp| {
        let r = q.fwhm_pix.unwrap_or(3.0).max(1.5);
        zp - 2.5 * (5.0 * q.background_rms * std::f64::consts::PI.sqrt() * r).log10()
    });
    let sources: Vec<SourceRow> = extraction
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let m = &s.m;
            // Positions on the sky come from the windowed centroid (the most precise one).
            let pos = sky(m.x_win, m.y_win);
            let (ra_err, dec_err) = match (
                pos,
                wcs.as_ref()
                    .and_then(|w| local_jacobian(w, m.x_win, m.y_win)),
            ) {
                (Some(_), Some(j)) => {
                    let (vx, vy) = (m.err_x_win2, m.err_y_win2);
                    let sra = (j[0][0].powi(2) * vx + j[0][1].powi(2) * vy).sqrt() * 3600.0;
                    let sdec = (j[1][0].powi(2) * vx + j[1][1].powi(2) * vy).sqrt() * 3600.0;
                    (Some(sra), Some(sdec))
                }
                _ => (None, None),
            };
            let mut fl = m.flags;
            if pos.is_none() {
                fl |= flags::NO_WCS;
            }
            let mag = zp.and_then(|zp| astropipe_udfs::photometry::flux_to_mag(m.flux_auto, zp));
            SourceRow {
                source_id: format!("{exposure_id:016x}-{:06}", i + 1),
                exposure_id,
                ra: pos.map(|p| p.0),
                dec: pos.map(|p| p.1),
                ra_err,
                dec_err,
                x: m.x,
                y: m.y,
                x_win: m.x_win,
                y_win: m.y_win,
                a: m.a,
                b: m.b,
                theta: m.theta_deg,
                flux_auto: m.flux_auto,
                flux_auto_err: m.flux_auto_err,
                flux_aper: m.flux_aper.clone(),
                flux_aper_err: m.flux_aper_err.clone(),
                flux_iso: m.flux_iso,
                mag_auto: mag,
                mag_auto_err: mag
                    .map(|_| 2.5 / std::f64::consts::LN_10 * m.flux_auto_err / m.flux_auto),
                kron_radius: m.kron_radius,
                fwhm: m.fwhm.is_finite().then_some(m.fwhm),
                ellipticity: m.ellipticity().is_finite().then(|| m.ellipticity()),
                peak: m.peak,
                background: s.background,
                npix: m.npix as i32,
                snr: m.snr().is_finite().then(|| m.snr()),
                flags: fl,
                mjd_obs: mjd,
                filter: filter.clone(),
                healpix_29: pos
                    .and_then(|(ra, dec)| astropipe_udfs::healpix::nested_index(29, ra, dec)),
            }
        })
        .collect();
    let exposure = ExposureRow {
        exposure_id,
        file_uri: file_uri.to_string(),
        file_sha256: file_sha256.to_string(),
        hdu: hdu.index as i32,
        plane: plane.map(|p| p as i32),
        object: kw.object(),
        telescope: kw.telescope(),
        instrument: kw.instrument(),
        filter,
        exptime: kw.exptime(),
        date_obs_us: mjd.map(mjd_to_unix_us),
        mjd_obs: mjd,
        naxis1: width as i32,
        naxis2: height as i32,
        ra_center: centre.map(|c| c.0),
        dec_center: centre.map(|c| c.1),
        footprint,
        pixel_scale_arcsec: scale,
        wcs_status,
        background_level: Some(q.background_level),
        background_rms: Some(q.background_rms),
        fwhm_pix: q.fwhm_pix,
        fwhm_arcsec: q.fwhm_pix.zip(scale).map(|(f, s)| f * s),
        ellipticity: q.ellipticity,
        n_sources: sources.len() as i64,
        zero_point: zp,
        limiting_mag,
        aperture_radii: opts.measure.aperture_radii.clone(),
        cosmic_ray_pixels: extraction.cosmic_ray_pixels as i64,
        calib_bias: applied.bias.clone(),
        calib_dark: applied.dark.clone(),
        calib_flat: applied.flat.clone(),
        pipeline_version: env!("CARGO_PKG_VERSION").to_string(),
        processed_at_us: now_us(),
        header_json: hdu.header.to_json().to_string(),
    };
    let warnings = applied
        .warnings
        .into_iter()
        .map(|w| format!("HDU {}: calibration: {w}", hdu.index))
        .collect();
    Ok((exposure, sources, warnings))
}

/// The extraction settings for one HDU: the configured ones, with the detector's saturation,
/// gain and read noise from the header where the configuration leaves them open.
pub fn options_for(opts: &ExtractOptions, kw: &Keywords) -> ExtractOptions {
    let mut ex_opts = opts.clone();
    if ex_opts.saturation.is_none() {
        ex_opts.saturation = kw.saturation();
    }
    if ex_opts.measure.gain.is_none() {
        ex_opts.measure.gain = kw.gain();
    }
    if let (Some(c), false) = (ex_opts.cosmic.as_mut(), ex_opts.readnoise_set)
        && let Some(rn) = kw.readnoise()
    {
        c.readnoise = rn as f32;
    }
    ex_opts
}

/// ∂(α cos δ, δ)/∂(x, y) in degrees per pixel, by central differences (includes SIP).
fn local_jacobian(w: &Wcs, x: f64, y: f64) -> Option<[[f64; 2]; 2]> {
    let h = 0.5;
    let (_, dec0) = w.pix2icrs(x, y)?;
    let cosd = dec0.to_radians().cos();
    let d = |a: (f64, f64), b: (f64, f64)| {
        let mut dra = a.0 - b.0;
        if dra > 180.0 {
            dra -= 360.0;
        } else if dra < -180.0 {
            dra += 360.0;
        }
        (dra * cosd / (2.0 * h), (a.1 - b.1) / (2.0 * h))
    };
    let dx = d(w.pix2icrs(x + h, y)?, w.pix2icrs(x - h, y)?);
    let dy = d(w.pix2icrs(x, y + h)?, w.pix2icrs(x, y - h)?);
    Some([[dx.0, dy.0], [dx.1, dy.1]])
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

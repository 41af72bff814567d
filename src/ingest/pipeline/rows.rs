//! Stage 4 of a plane: the catalog rows — one `sources` row per measured source (sky position
//! from the windowed centroid, magnitudes when the header gives a zero point, the HATS index),
//! and the `exposures` row with the plane's quality figures and provenance.

use super::astrometry::{Footprint, Sky};
use crate::calib::Applied;
use crate::catalog::schema::{ExposureRow, SourceRow};
use crate::fits::Hdu;
use crate::fits::keywords::{Keywords, mjd_to_unix_us};
use crate::image::{Extraction, flags, quality};

/// What identifies the plane the rows come from.
pub struct Plane<'a> {
    pub hdu: &'a Hdu,
    pub plane: Option<usize>,
    pub exposure_id: i64,
    pub file_uri: &'a str,
    pub file_sha256: &'a str,
    pub width: usize,
    pub height: usize,
    pub aperture_radii: &'a [f64],
}

/// The sources of an extraction, on the sky.
pub fn sources(
    extraction: &Extraction,
    sky: &Sky,
    kw: &Keywords,
    exposure_id: i64,
) -> Vec<SourceRow> {
    let mjd = kw.mjd_obs();
    let filter = kw.filter();
    let zp = kw.zero_point();
    extraction
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let m = &s.m;
            // Positions on the sky come from the windowed centroid (the most precise one).
            let pos = sky.at(m.x_win, m.y_win);
            let (ra_err, dec_err) = match pos {
                Some(_) => sky.errors(m.x_win, m.y_win, m.err_x_win2, m.err_y_win2),
                None => (None, None),
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
        .collect()
}

/// The `exposures` row of a plane.
pub fn exposure(
    p: &Plane,
    kw: &Keywords,
    extraction: &Extraction,
    n_sources: usize,
    sky: &Sky,
    applied: &Applied,
) -> ExposureRow {
    let q = quality::quality(extraction);
    let (ox, oy) = (applied.origin.0 as f64, applied.origin.1 as f64);
    let fp = Footprint::of(sky, p.width, p.height, ox, oy);
    let mjd = kw.mjd_obs();
    let zp = kw.zero_point();
    let limiting_mag = zp.map(|zp| {
        let r = q.fwhm_pix.unwrap_or(3.0).max(1.5);
        zp - 2.5 * (5.0 * q.background_rms * std::f64::consts::PI.sqrt() * r).log10()
    });
    ExposureRow {
        exposure_id: p.exposure_id,
        file_uri: p.file_uri.to_string(),
        file_sha256: p.file_sha256.to_string(),
        hdu: p.hdu.index as i32,
        plane: p.plane.map(|p| p as i32),
        object: kw.object(),
        telescope: kw.telescope(),
        instrument: kw.instrument(),
        filter: kw.filter(),
        exptime: kw.exptime(),
        date_obs_us: mjd.map(mjd_to_unix_us),
        mjd_obs: mjd,
        naxis1: p.width as i32,
        naxis2: p.height as i32,
        ra_center: fp.centre.map(|c| c.0),
        dec_center: fp.centre.map(|c| c.1),
        footprint: fp.corners,
        pixel_scale_arcsec: fp.scale_arcsec,
        wcs_status: sky.status.clone(),
        background_level: Some(q.background_level),
        background_rms: Some(q.background_rms),
        fwhm_pix: q.fwhm_pix,
        fwhm_arcsec: q.fwhm_pix.zip(fp.scale_arcsec).map(|(f, s)| f * s),
        ellipticity: q.ellipticity,
        n_sources: n_sources as i64,
        zero_point: zp,
        limiting_mag,
        aperture_radii: p.aperture_radii.to_vec(),
        cosmic_ray_pixels: extraction.cosmic_ray_pixels as i64,
        calib_bias: applied.bias.clone(),
        calib_dark: applied.dark.clone(),
        calib_flat: applied.flat.clone(),
        pipeline_version: env!("CARGO_PKG_VERSION").to_string(),
        processed_at_us: now_us(),
        header_json: p.hdu.header.to_json().to_string(),
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

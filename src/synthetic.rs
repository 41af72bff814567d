//! Synthetic star fields with a known TAN WCS and known stars, for the demo, the tests and the
//! benches. Stars are placed on the sky and projected with the gnomonic formula
//! ([`crate::wcs::gnomonic`]), independently of the [`crate::wcs::Wcs`] code that ingest uses
//! to go back, so a WCS bug cannot hide behind itself.

use crate::fits::HeaderValue;
use crate::fits::writer::{Encoding, FitsWriter};
use crate::wcs::gnomonic;

/// A star that was injected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Star {
    pub ra: f64,
    pub dec: f64,
    /// 0-based pixel position.
    pub x: f64,
    pub y: f64,
    /// Total flux (ADU).
    pub flux: f64,
}

/// Parameters of a synthetic frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSpec {
    pub width: usize,
    pub height: usize,
    pub ra0: f64,
    pub dec0: f64,
    /// Pixel scale, arcsec.
    pub scale_arcsec: f64,
    /// Position angle of the detector, degrees.
    pub rotation_deg: f64,
    pub n_stars: usize,
    /// log10 of the flux range.
    pub log_flux: (f64, f64),
    pub psf_sigma: f64,
    pub sky: f64,
    pub noise: f64,
    pub seed: u64,
    pub object: String,
    pub date_obs: String,
    pub filter: String,
}

impl Default for FrameSpec {
    fn default() -> Self {
        FrameSpec {
            width: 512,
            height: 512,
            ra0: 150.0,
            dec0: 2.2,
            scale_arcsec: 0.4,
            rotation_deg: 12.0,
            n_stars: 60,
            log_flux: (3.0, 5.5),
            psf_sigma: 1.5,
            sky: 1000.0,
            noise: 10.0,
            seed: 20_240_601,
            object: "SYNTHETIC".into(),
            date_obs: "2026-03-14T04:05:06".into(),
            filter: "r".into(),
        }
    }
}

/// A generated frame: pixels (row-major), the stars, and the FITS file bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub spec: FrameSpec,
    pub pixels: Vec<f64>,
    pub stars: Vec<Star>,
}

/// SplitMix64: a small deterministic generator (no dependency, stable across platforms).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

impl FrameSpec {
    /// The CD matrix (degrees per pixel): RA increasing to the left (east left), rotated.
    pub fn cd(&self) -> [[f64; 2]; 2] {
        let s = self.scale_arcsec / 3600.0;
        let (sr, cr) = self.rotation_deg.to_radians().sin_cos();
        [[-s * cr, s * sr], [s * sr, s * cr]]
    }

    /// CRPIX (1-based): the image centre.
    pub fn crpix(&self) -> (f64, f64) {
        (
            (self.width as f64 + 1.0) / 2.0,
            (self.height as f64 + 1.0) / 2.0,
        )
    }

    /// 0-based pixel of a sky position, by the gnomonic projection and the inverse CD matrix.
    pub fn sky_to_pixel(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let (xi, eta) = gnomonic(ra, dec, self.ra0, self.dec0)?;
        let cd = self.cd();
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        let u = (cd[1][1] * xi - cd[0][1] * eta) / det;
        let v = (-cd[1][0] * xi + cd[0][0] * eta) / det;
        let (c1, c2) = self.crpix();
        Some((u + c1 - 1.0, v + c2 - 1.0))
    }

    /// Header cards of the WCS and the observation.
    pub fn cards(&self) -> Vec<(&'static str, HeaderValue)> {
        let cd = self.cd();
        let (c1, c2) = self.crpix();
        vec![
            ("OBJECT", HeaderValue::Str(self.object.clone())),
            ("TELESCOP", HeaderValue::Str("astropipe-synthetic".into())),
            ("INSTRUME", HeaderValue::Str("simulator".into())),
            ("FILTER", HeaderValue::Str(self.filter.clone())),
            ("EXPTIME", HeaderValue::Float(60.0)),
            ("DATE-OBS", HeaderValue::Str(self.date_obs.clone())),
            ("GAIN", HeaderValue::Float(2.0)),
            ("CTYPE1", HeaderValue::Str("RA---TAN".into())),
            ("CTYPE2", HeaderValue::Str("DEC--TAN".into())),
            ("CRPIX1", HeaderValue::Float(c1)),
            ("CRPIX2", HeaderValue::Float(c2)),
            ("CRVAL1", HeaderValue::Float(self.ra0)),
            ("CRVAL2", HeaderValue::Float(self.dec0)),
            ("CD1_1", HeaderValue::Float(cd[0][0])),
            ("CD1_2", HeaderValue::Float(cd[0][1])),
            ("CD2_1", HeaderValue::Float(cd[1][0])),
            ("CD2_2", HeaderValue::Float(cd[1][1])),
            ("RADESYS", HeaderValue::Str("ICRS".into())),
            ("NSTARS", HeaderValue::Int(self.n_stars as i64)),
            ("SEED", HeaderValue::Int(self.seed as i64)),
        ]
    }

    /// Generates the frame: stars at random sky positions at least 10 pixels inside the
    /// edges and 12 pixels apart (so that no two blend), Gaussian PSF, sky with a gentle
    /// gradient, Gaussian noise.
    pub fn generate(&self) -> Frame {
        let mut rng = Rng::new(self.seed);
        let (w, h) = (self.width as f64, self.height as f64);
        let margin = 10.0;
        let half_fov = 0.75 * w.max(h) * self.scale_arcsec / 3600.0;
        let mut stars: Vec<Star> = Vec::with_capacity(self.n_stars);
        let mut attempts = 0;
        while stars.len() < self.n_stars && attempts < self.n_stars * 200 {
            attempts += 1;
            let dec = self.dec0 + (rng.uniform() * 2.0 - 1.0) * half_fov;
            let ra =
                self.ra0 + (rng.uniform() * 2.0 - 1.0) * half_fov / self.dec0.to_radians().cos();
            let Some((x, y)) = self.sky_to_pixel(ra, dec) else {
                continue;
            };
            if x < margin || y < margin || x > w - 1.0 - margin || y > h - 1.0 - margin {
                continue;
            }
            if stars.iter().any(|s| (s.x - x).hypot(s.y - y) < 12.0) {
                continue;
            }
            let lf = self.log_flux.0 + rng.uniform() * (self.log_flux.1 - self.log_flux.0);
            stars.push(Star {
                ra: ra.rem_euclid(360.0),
                dec,
                x,
                y,
                flux: 10f64.powf(lf),
            });
        }
        let mut pixels = vec![0f64; self.width * self.height];
        for (i, p) in pixels.iter_mut().enumerate() {
            let (x, y) = ((i % self.width) as f64, (i / self.width) as f64);
            *p = self.sky + 20.0 * x / w + 10.0 * y / h + self.noise * rng.normal();
        }
        let half = (6.0 * self.psf_sigma).ceil() as i64;
        let norm = 1.0 / (2.0 * std::f64::consts::PI * self.psf_sigma * self.psf_sigma);
        for s in &stars {
            let (ix, iy) = (s.x.round() as i64, s.y.round() as i64);
            for yy in (iy - half).max(0)..=(iy + half).min(self.height as i64 - 1) {
                for xx in (ix - half).max(0)..=(ix + half).min(self.width as i64 - 1) {
                    let r2 = (xx as f64 - s.x).powi(2) + (yy as f64 - s.y).powi(2);
                    pixels[yy as usize * self.width + xx as usize] +=
                        s.flux * norm * (-0.5 * r2 / (self.psf_sigma * self.psf_sigma)).exp();
                }
            }
        }
        Frame {
            spec: self.clone(),
            pixels,
            stars,
        }
    }
}

impl Frame {
    /// The frame as a FITS file (BITPIX -32, primary HDU).
    pub fn to_fits(&self) -> Vec<u8> {
        let mut w = FitsWriter::new();
        w.image(
            self.spec.width,
            self.spec.height,
            &self.pixels,
            Encoding::F32,
            &self.spec.cards(),
        );
        w.finish()
    }

    /// The stars as CSV (`ra,dec,x,y,flux`; pixels 0-based).
    pub fn truth_csv(&self) -> String {
        let mut s = String::from("ra,dec,x,y,flux\n");
        for t in &self.stars {
            s.push_str(&format!(
                "{:.9},{:.9},{:.4},{:.4},{:.3}\n",
                t.ra, t.dec, t.x, t.y, t.flux
            ));
        }
        s
    }
}

/// Synthetic `sources` rows (catalog-level, no image): `n` positions uniform on the sky cap of
/// radius `radius_deg` around (ra0, dec0), with plausible measurements and their `_healpix_29`.
/// For catalog tests and the write bench. `exposure_id` values cycle over `exposures`.
pub fn source_rows(
    n: usize,
    (ra0, dec0): (f64, f64),
    radius_deg: f64,
    exposures: &[i64],
    seed: u64,
) -> Vec<crate::catalog::schema::SourceRow> {
    use crate::catalog::schema::SourceRow;
    let mut rng = Rng::new(seed);
    let (sd0, cd0) = dec0.to_radians().sin_cos();
    let cos_r = radius_deg.to_radians().cos();
    (0..n)
        .map(|i| {
            // Uniform on the cap: cos(rho) uniform in [cos r, 1], bearing uniform.
            let cr = 1.0 - rng.uniform() * (1.0 - cos_r);
            let sr = (1.0 - cr * cr).max(0.0).sqrt();
            let bearing = 2.0 * std::f64::consts::PI * rng.uniform();
            let sd = sd0 * cr + cd0 * sr * bearing.cos();
            let dec = sd.clamp(-1.0, 1.0).asin();
            let y = bearing.sin() * sr * cd0;
            let x = cr - sd0 * sd;
            let ra = (ra0 + y.atan2(x).to_degrees()).rem_euclid(360.0);
            let dec = dec.to_degrees();
            let exposure_id = exposures[i % exposures.len().max(1)];
            let flux = 10f64.powf(2.0 + 3.0 * rng.uniform());
            let err = flux.sqrt() + 5.0;
            let (px, py) = (rng.uniform() * 4096.0, rng.uniform() * 4096.0);
            SourceRow {
                source_id: format!("{exposure_id:016x}-{i:06}"),
                exposure_id,
                ra: Some(ra),
                dec: Some(dec),
                ra_err: Some(0.01),
                dec_err: Some(0.01),
                x: px,
                y: py,
                x_win: px,
                y_win: py,
                a: 1.5 + rng.uniform(),
                b: 1.2 + rng.uniform() * 0.3,
                theta: rng.uniform() * 180.0 - 90.0,
                flux_auto: flux,
                flux_auto_err: err,
                flux_aper: vec![flux * 0.7, flux * 0.9, flux * 0.97],
                flux_aper_err: vec![err * 0.6, err * 0.8, err * 0.95],
                flux_iso: flux * 0.95,
                mag_auto: Some(25.0 - 2.5 * flux.log10()),
                mag_auto_err: Some(1.0857 * err / flux),
                kron_radius: 3.5,
                fwhm: Some(3.0 + rng.normal() * 0.2),
                ellipticity: Some(0.05 * rng.uniform()),
                peak: flux / 20.0,
                background: 1000.0 + rng.normal(),
                npix: 20 + (rng.uniform() * 30.0) as i32,
                snr: Some(flux / err),
                flags: 0,
                mjd_obs: Some(61_000.0 + (exposure_id.rem_euclid(1000)) as f64),
                filter: Some("r".into()),
                healpix_29: astropipe_udfs::healpix::nested_index(29, ra, dec),
            }
        })
        .collect()
}

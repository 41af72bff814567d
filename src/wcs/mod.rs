//! World coordinates: pixel ↔ sky for FITS celestial WCS (Greisen & Calabretta 2002, paper I;
//! Calabretta & Greisen 2002, paper II; SIP: Shupe et al. 2005; TPV), checked against
//! astropy.wcs (WCSLIB) in the tests.
//!
//! Pixel → sky, for a 0-based pixel (x, y):
//! 1. offsets from the reference pixel, `x + 1 − CRPIX1`, `y + 1 − CRPIX2`;
//! 2. SIP distortion (`-SIP` CTYPEs);
//! 3. the linear transformation (PCi_j × CDELTi, or CDi_j, or CDELTi with CROTA2) to
//!    intermediate world coordinates in degrees;
//! 4. TPV distortion (`-TPV` CTYPEs);
//! 5. the projection ([`projection`], all 27 of paper II and HPX) to native (φ, θ);
//! 6. the spherical rotation ([`celestial`]) to the WCS's own celestial frame;
//! 7. for the catalog, conversion to ICRS ([`frames`]).
//!
//! Sky → pixel runs the same steps backwards (distortions inverted by Newton iteration).
//! A pixel off the sky (outside the projection's domain) gives `None`, never garbage.

pub mod celestial;
pub mod distortion;
pub use astropipe_udfs::frames;
pub mod projection;

use crate::fits::Header;
use celestial::Rotation;
use distortion::{Sip, Tpv};
pub use frames::Frame;
use projection::Projection;
use std::f64::consts::PI;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WcsError {
    #[error("no celestial WCS (CTYPE1/CTYPE2 missing)")]
    Missing,
    #[error("unsupported CTYPE {0:?}")]
    UnsupportedCtype(String),
    #[error("unsupported projection {0}")]
    UnsupportedProjection(String),
    #[error("invalid projection parameters: {0}")]
    BadParameters(String),
    #[error("missing or invalid keyword {0}")]
    BadKeyword(String),
    #[error("singular pixel-to-world matrix")]
    Singular,
}

/// A celestial WCS, ready to transform pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Wcs {
    pub ctype: [String; 2],
    pub frame: Frame,
    pub projection: Projection,
    /// The projection code (`TAN`, ...).
    pub code: String,
    /// 0 when axis 1 is the longitude axis, 1 when axes are swapped (e.g. DEC--TAN first).
    lng_axis: usize,
    crpix: [f64; 2],
    /// Pixel offset → intermediate world coordinates (degrees), in axis order.
    cd: [[f64; 2]; 2],
    cd_inv: [[f64; 2]; 2],
    rotation: Rotation,
    /// Projection-plane offset of a non-default fiducial point (WCSLIB's x0, y0).
    offset: (f64, f64),
    sip: Option<Sip>,
    tpv: Option<Tpv>,
}

fn axis_kind(ctype: &str) -> Option<(&'static str, bool)> {
    // (coordinate type, is latitude)
    for (k, lat) in [
        ("RA", false),
        ("DEC", true),
        ("GLON", false),
        ("GLAT", true),
        ("ELON", false),
        ("ELAT", true),
    ] {
        if let Some(rest) = ctype.strip_prefix(k)
            && (rest.is_empty() || rest.starts_with('-'))
        {
            return Some((k, lat));
        }
    }
    None
}

/// Projection code and distortion suffix of a CTYPE such as `RA---TAN-SIP`.
fn projection_code(ctype: &str) -> Result<(String, Option<String>), WcsError> {
    let code = ctype
        .get(5..8)
        .filter(|c| c.chars().all(|ch| ch.is_ascii_alphabetic()))
        .ok_or_else(|| WcsError::UnsupportedCtype(ctype.to_string()))?;
    let dist = ctype
        .get(8..)
        .and_then(|s| s.strip_prefix('-'))
        .map(|s| s.trim().to_string());
    Ok((code.to_string(), dist.filter(|d| !d.is_empty())))
}

/// Degrees per unit of a CUNIT value.
fn unit_scale(cunit: Option<&str>) -> Result<f64, WcsError> {
    Ok(match cunit.map(|u| u.trim().to_ascii_lowercase()) {
        None => 1.0,
        Some(u) if u.is_empty() || u == "deg" || u == "degree" || u == "degrees" => 1.0,
        Some(u) if u == "arcmin" => 1.0 / 60.0,
        Some(u) if u == "arcsec" => 1.0 / 3600.0,
        Some(u) if u == "mas" => 1.0 / 3.6e6,
        Some(u) if u == "rad" => 180.0 / PI,
        Some(u) => return Err(WcsError::BadKeyword(format!("CUNIT = {u:?}"))),
    })
}

impl Wcs {
    /// Reads the celestial WCS on axes 1 and 2 of a header.
    pub fn from_header(h: &Header) -> Result<Self, WcsError> {
        let c1 = h
            .str("CTYPE1")
            .ok_or(WcsError::Missing)?
            .trim()
            .to_ascii_uppercase();
        let c2 = h
            .str("CTYPE2")
            .ok_or(WcsError::Missing)?
            .trim()
            .to_ascii_uppercase();
        let (k1, k2) = (axis_kind(&c1), axis_kind(&c2));
        let (lng_axis, lng_kind, lat_kind) = match (k1, k2) {
            (Some((a, false)), Some((b, true))) => (0, a, b),
            (Some((a, true)), Some((b, false))) => (1, b, a),
            _ => return Err(WcsError::UnsupportedCtype(format!("{c1} / {c2}"))),
        };
        let pair_ok = matches!(
            (lng_kind, lat_kind),
            ("RA", "DEC") | ("GLON", "GLAT") | ("ELON", "ELAT")
        );
        if !pair_ok {
            return Err(WcsError::UnsupportedCtype(format!("{c1} / {c2}")));
        }
        let (code1, dist1) = projection_code(&c1)?;
        let (code2, dist2) = projection_code(&c2)?;
        if code1 != code2 || dist1 != dist2 {
            return Err(WcsError::UnsupportedCtype(format!("{c1} / {c2}")));
        }
        let (lng_i, lat_i) = if lng_axis == 0 { (1, 2) } else { (2, 1) };
        // TPV is TAN with a polynomial distortion; SIP is a suffix.
        let (code, tpv) = if code1 == "TPV" {
            ("TAN".to_string(), Some(Tpv::from_header(h, lng_i, lat_i)))
        } else {
            (code1.clone(), None)
        };
        let sip = match dist1.as_deref() {
            None => None,
            Some("SIP") => Some(Sip::from_header(h)?),
            Some(other) => return Err(WcsError::UnsupportedProjection(format!("{code1}-{other}"))),
        };
        let pv: Vec<Option<f64>> = (0..30).map(|m| h.f64(&format!("PV{lat_i}_{m}"))).collect();
        let projection =
            Projection::new(&code, if tpv.is_some() { &[] } else { &pv }).map_err(|e| match e {
                projection::ParamError::Unknown(_) => WcsError::UnsupportedProjection(code.clone()),
                projection::ParamError::Invalid(why) => WcsError::BadParameters(why),
            })?;
        let num = |k: &str| -> Result<f64, WcsError> {
            h.f64(k)
                .filter(|v| v.is_finite())
                .ok_or_else(|| WcsError::BadKeyword(k.to_string()))
        };
        let crpix = [
            h.f64("CRPIX1").unwrap_or(0.0),
            h.f64("CRPIX2").unwrap_or(0.0),
        ];
        let scale = [unit_scale(h.str("CUNIT1"))?, unit_scale(h.str("CUNIT2"))?];
        let crval = [num("CRVAL1")? * scale[0], num("CRVAL2")? * scale[1]];
        let mut cd = linear_matrix(h)?;
        for (i, row) in cd.iter_mut().enumerate() {
            for v in row.iter_mut() {
                *v *= scale[i];
            }
        }
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        if det == 0.0 || !det.is_finite() {
            return Err(WcsError::Singular);
        }
        let cd_inv = [
            [cd[1][1] / det, -cd[0][1] / det],
            [-cd[1][0] / det, cd[0][0] / det],
        ];
        let (alpha0, delta0) = if lng_axis == 0 {
            (crval[0], crval[1])
        } else {
            (crval[1], crval[0])
        };
        // Fiducial point: the projection's default, or PVi_1/PVi_2 of the longitude axis.
        let (def_phi0, def_theta0) = projection.fiducial();
        let pvl = |m: usize| h.f64(&format!("PV{lng_i}_{m}"));
        // (For TPV, PVi_m are distortion coefficients, not projection parameters.)
        let fiducial = if tpv.is_some() {
            (None, None)
        } else {
            (pvl(1), pvl(2))
        };
        let (phi0, theta0, offset) = match fiducial {
            (None, None) => (def_phi0, def_theta0, (0.0, 0.0)),
            (p, t) => {
                let (phi0, theta0) = (p.unwrap_or(def_phi0), t.unwrap_or(def_theta0));
                let off = projection.s2x(phi0, theta0).ok_or_else(|| {
                    WcsError::BadParameters("fiducial point off the projection".into())
                })?;
                (phi0, theta0, off)
            }
        };
        let pole_pv = |m| if tpv.is_some() { None } else { pvl(m) };
        let lonpole = h.f64("LONPOLE").or_else(|| pole_pv(3));
        let latpole = h.f64("LATPOLE").or_else(|| pole_pv(4));
        let rotation = Rotation::new(alpha0, delta0, phi0, theta0, lonpole, latpole)?;
        let frame = match lng_kind {
            "GLON" => Frame::Galactic,
            "ELON" => Frame::Ecliptic,
            _ => equatorial_frame(h),
        };
        Ok(Wcs {
            ctype: [c1, c2],
            frame,
            projection,
            code,
            lng_axis,
            crpix,
            cd,
            cd_inv,
            rotation,
            offset,
            sip,
            tpv,
        })
    }

    /// True when axis 1 is the latitude axis (e.g. CTYPE1 = DEC--TAN): tools that answer in
    /// axis order, such as astropy's `all_pix2world`, give (latitude, longitude).
    pub fn lat_first(&self) -> bool {
        self.lng_axis == 1
    }

    pub fn has_sip(&self) -> bool {
        self.sip.is_some()
    }

    /// Sky position (degrees, in the WCS's own frame, longitude in [0, 360)) of the 0-based
    /// pixel (x, y), or `None` when the pixel is off the sky.
    pub fn pix2world(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        if !x.is_finite() || !y.is_finite() {
            return None;
        }
        let mut u = x + 1.0 - self.crpix[0];
        let mut v = y + 1.0 - self.crpix[1];
        if let Some(sip) = &self.sip {
            (u, v) = sip.forward(u, v);
        }
        let i1 = self.cd[0][0] * u + self.cd[0][1] * v;
        let i2 = self.cd[1][0] * u + self.cd[1][1] * v;
        let (mut xl, mut yl) = if self.lng_axis == 0 {
            (i1, i2)
        } else {
            (i2, i1)
        };
        if let Some(tpv) = &self.tpv {
            (xl, yl) = tpv.forward(xl, yl);
        }
        let (phi, theta) = self
            .projection
            .x2s(xl + self.offset.0, yl + self.offset.1)?;
        let (lng, lat) = self.rotation.to_celestial(phi, theta);
        (lng.is_finite() && lat.is_finite()).then_some((lng, lat))
    }

    /// The 0-based pixel of a sky position in the WCS's own frame, or `None` when the
    /// position is not on the projection (behind a zenithal projection's horizon, ...).
    pub fn world2pix(&self, lng: f64, lat: f64) -> Option<(f64, f64)> {
        if !lng.is_finite() || !lat.is_finite() || lat.abs() > 90.0 {
            return None;
        }
        let (phi, theta) = self.rotation.to_native(lng, lat);
        let (px, py) = self.projection.s2x(phi, theta)?;
        let (mut xl, mut yl) = (px - self.offset.0, py - self.offset.1);
        if let Some(tpv) = &self.tpv {
            (xl, yl) = tpv.inverse(xl, yl)?;
        }
        let (i1, i2) = if self.lng_axis == 0 {
            (xl, yl)
        } else {
            (yl, xl)
        };
        let mut u = self.cd_inv[0][0] * i1 + self.cd_inv[0][1] * i2;
        let mut v = self.cd_inv[1][0] * i1 + self.cd_inv[1][1] * i2;
        if let Some(sip) = &self.sip {
            (u, v) = sip.inverse(u, v)?;
        }
        Some((u + self.crpix[0] - 1.0, v + self.crpix[1] - 1.0))
    }

    /// Sky position in ICRS degrees of the 0-based pixel (x, y).
    pub fn pix2icrs(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (lon, lat) = self.pix2world(x, y)?;
        Some(self.frame.to_icrs(lon, lat))
    }

    /// Approximate pixel scale in arcseconds at the reference pixel (√|det CD|).
    pub fn pixel_scale_arcsec(&self) -> f64 {
        let det = self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0];
        det.abs().sqrt() * 3600.0
    }
}

/// RADESYS / EQUINOX per paper II §3.1: RADESYS when present, else FK4 for EQUINOX < 1984,
/// FK5 for later equinoxes, ICRS when neither is given.
fn equatorial_frame(h: &Header) -> Frame {
    let equinox = h.f64("EQUINOX").or_else(|| h.f64("EPOCH"));
    match h
        .str("RADESYS")
        .or_else(|| h.str("RADECSYS"))
        .map(|s| s.trim().to_ascii_uppercase())
    {
        Some(s) if s == "ICRS" => Frame::Icrs,
        Some(s) if s == "FK5" => Frame::Fk5(equinox.unwrap_or(2000.0)),
        Some(s) if s == "FK4" => Frame::Fk4(equinox.unwrap_or(1950.0)),
        Some(s) if s == "FK4-NO-E" => Frame::Fk4NoE(equinox.unwrap_or(1950.0)),
        Some(_) => Frame::Icrs,
        None => match equinox {
            None => Frame::Icrs,
            Some(e) if e < 1984.0 => Frame::Fk4(e),
            Some(e) => Frame::Fk5(e),
        },
    }
}

/// The linear matrix: PCi_j × CDELTi when PC is present, else CDi_j, else CDELTi with CROTA2.
fn linear_matrix(h: &Header) -> Result<[[f64; 2]; 2], WcsError> {
    let has = |keys: [&str; 4]| keys.iter().any(|k| h.contains(k));
    let cdelt1 = h.f64("CDELT1").unwrap_or(1.0);
    let cdelt2 = h.f64("CDELT2").unwrap_or(1.0);
    if has(["PC1_1", "PC1_2", "PC2_1", "PC2_2"])
        || has(["PC001001", "PC001002", "PC002001", "PC002002"])
    {
        let g = |a: &str, b: &str, d: f64| h.f64(a).or_else(|| h.f64(b)).unwrap_or(d);
        let pc = [
            [g("PC1_1", "PC001001", 1.0), g("PC1_2", "PC001002", 0.0)],
            [g("PC2_1", "PC002001", 0.0), g("PC2_2", "PC002002", 1.0)],
        ];
        return Ok([
            [cdelt1 * pc[0][0], cdelt1 * pc[0][1]],
            [cdelt2 * pc[1][0], cdelt2 * pc[1][1]],
        ]);
    }
    if has(["CD1_1", "CD1_2", "CD2_1", "CD2_2"]) {
        return Ok([
            [h.f64("CD1_1").unwrap_or(0.0), h.f64("CD1_2").unwrap_or(0.0)],
            [h.f64("CD2_1").unwrap_or(0.0), h.f64("CD2_2").unwrap_or(0.0)],
        ]);
    }
    let rho = h.f64("CROTA2").unwrap_or(0.0).to_radians();
    let (s, c) = rho.sin_cos();
    Ok([[cdelt1 * c, -cdelt2 * s], [cdelt1 * s, cdelt2 * c]])
}

/// Gnomonic (TAN) projection of (ra, dec) about (ra0, dec0), giving standard coordinates
/// (ξ, η) in degrees; used by tests and synthetic frames to place stars independently of
/// [`Wcs`].
pub fn gnomonic(ra: f64, dec: f64, ra0: f64, dec0: f64) -> Option<(f64, f64)> {
    let (sd, cd) = dec.to_radians().sin_cos();
    let (sd0, cd0) = dec0.to_radians().sin_cos();
    let (sda, cda) = (ra - ra0).to_radians().sin_cos();
    let den = sd * sd0 + cd * cd0 * cda;
    if den <= 0.0 {
        return None;
    }
    let xi = cd * sda / den;
    let eta = (sd * cd0 - cd * sd0 * cda) / den;
    Some((xi * 180.0 / PI, eta * 180.0 / PI))
}

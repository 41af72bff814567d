//! World coordinates: pixel ↔ sky for FITS celestial WCS (Greisen & Calabretta 2002, paper I;
//! Calabretta & Greisen 2002, paper II; SIP: Shupe et al. 2005).
//!
//! Pipeline for a 0-based pixel (x, y):
//! 1. FITS 1-based offsets from CRPIX: `u = x + 1 - CRPIX1`, `v = y + 1 - CRPIX2`;
//! 2. SIP distortion when CTYPE ends in `-SIP`: `u += Σ A_p_q u^p v^q`, `v += Σ B_p_q u^p v^q`;
//! 3. the linear transform (CD, or PC × CDELT, or CDELT + CROTA2) to intermediate world
//!    coordinates (degrees);
//! 4. the projection to native spherical coordinates (φ, θ);
//! 5. the spherical rotation to celestial coordinates, using CRVAL and LONPOLE.
//!
//! Projections implemented: the zenithal family TAN, SIN (orthographic, no slant PV), ARC,
//! STG and ZEA. Others are reported as unsupported, so the HDU gets null positions rather than
//! wrong ones. Celestial frames: equatorial (RA/DEC; FK5 and ICRS are treated alike, they
//! differ by < 25 mas) and galactic (GLON/GLAT, converted to ICRS with the Hipparcos matrix).

use crate::fits::Header;
use std::f64::consts::PI;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WcsError {
    #[error("no celestial WCS (CTYPE1/CTYPE2 missing)")]
    Missing,
    #[error("unsupported CTYPE {0:?}")]
    UnsupportedCtype(String),
    #[error("unsupported projection {0}")]
    UnsupportedProjection(String),
    #[error("missing or invalid keyword {0}")]
    BadKeyword(String),
    #[error("singular pixel-to-world matrix")]
    Singular,
}

/// Zenithal projections (θ0 = 90°).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    Tan,
    Sin,
    Arc,
    Stg,
    Zea,
}

impl Projection {
    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "TAN" => Projection::Tan,
            "SIN" => Projection::Sin,
            "ARC" => Projection::Arc,
            "STG" => Projection::Stg,
            "ZEA" => Projection::Zea,
            _ => return None,
        })
    }

    /// Native latitude θ (degrees) at radius `r` (degrees) in the plane, or `None` when the
    /// point is outside the projection's domain.
    fn theta(self, r: f64) -> Option<f64> {
        let r_rad = r.to_radians();
        let t = match self {
            Projection::Tan => (1.0f64).atan2(r_rad).to_degrees(),
            Projection::Sin => {
                if r_rad > 1.0 + 1e-13 {
                    return None;
                }
                r_rad.min(1.0).acos().to_degrees()
            }
            Projection::Arc => 90.0 - r,
            Projection::Stg => 90.0 - 2.0 * (r_rad / 2.0).atan().to_degrees(),
            Projection::Zea => {
                let s = r_rad / 2.0;
                if s > 1.0 + 1e-13 {
                    return None;
                }
                90.0 - 2.0 * s.min(1.0).asin().to_degrees()
            }
        };
        (t >= -90.0).then_some(t)
    }
}

/// Celestial frame of the WCS axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Equatorial,
    Galactic,
}

/// SIP forward polynomials `A_p_q`, `B_p_q` (Shupe et al. 2005).
#[derive(Debug, Clone, PartialEq)]
pub struct Sip {
    a: Vec<(i32, i32, f64)>,
    b: Vec<(i32, i32, f64)>,
}

impl Sip {
    fn from_header(h: &Header) -> Result<Self, WcsError> {
        let poly = |prefix: &str| -> Result<Vec<(i32, i32, f64)>, WcsError> {
            let order_key = format!("{prefix}_ORDER");
            let order = h
                .i64(&order_key)
                .filter(|o| (0..=9).contains(o))
                .ok_or(WcsError::BadKeyword(order_key))? as i32;
            let mut terms = Vec::new();
            for p in 0..=order {
                for q in 0..=(order - p) {
                    if let Some(c) = h.f64(&format!("{prefix}_{p}_{q}"))
                        && c != 0.0
                    {
                        terms.push((p, q, c));
                    }
                }
            }
            Ok(terms)
        };
        Ok(Sip {
            a: poly("A")?,
            b: poly("B")?,
        })
    }

    fn apply(&self, u: f64, v: f64) -> (f64, f64) {
        let eval = |terms: &[(i32, i32, f64)]| {
            terms
                .iter()
                .map(|&(p, q, c)| c * u.powi(p) * v.powi(q))
                .sum::<f64>()
        };
        (u + eval(&self.a), v + eval(&self.b))
    }
}

/// A celestial WCS, ready to transform pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Wcs {
    pub ctype: [String; 2],
    pub frame: Frame,
    pub projection: Projection,
    crpix: [f64; 2],
    /// Celestial coordinates (degrees) of the reference point; the native pole of a zenithal
    /// projection.
    crval: [f64; 2],
    /// Pixel offset → intermediate world coordinates (degrees).
    cd: [[f64; 2]; 2],
    /// Native longitude of the celestial pole (LONPOLE), degrees.
    lonpole: f64,
    sip: Option<Sip>,
    /// True when axis 1 is latitude (e.g. CTYPE1 = DEC--TAN).
    swapped: bool,
}

impl Wcs {
    /// Reads the celestial WCS of a header (axes 1 and 2).
    pub fn from_header(h: &Header) -> Result<Self, WcsError> {
        let c1 = h.str("CTYPE1").ok_or(WcsError::Missing)?.trim().to_string();
        let c2 = h.str("CTYPE2").ok_or(WcsError::Missing)?.trim().to_string();
        let (lon_t, lat_t, swapped) = if is_lat(&c1) {
            (&c2, &c1, true)
        } else {
            (&c1, &c2, false)
        };
        let frame = match (axis_kind(lon_t), axis_kind(lat_t)) {
            (Some(("RA", _)), Some(("DEC", _))) => Frame::Equatorial,
            (Some(("GLON", _)), Some(("GLAT", _))) => Frame::Galactic,
            _ => return Err(WcsError::UnsupportedCtype(format!("{c1} / {c2}"))),
        };
        let (code1, dist1) = projection_code(lon_t)?;
        let (code2, _) = projection_code(lat_t)?;
        if code1 != code2 {
            return Err(WcsError::UnsupportedCtype(format!("{c1} / {c2}")));
        }
        let projection =
            Projection::from_code(&code1).ok_or(WcsError::UnsupportedProjection(code1.clone()))?;
        if projection == Projection::Sin
            && (h.f64("PV2_1").unwrap_or(0.0) != 0.0 || h.f64("PV2_2").unwrap_or(0.0) != 0.0)
        {
            return Err(WcsError::UnsupportedProjection(
                "SIN with slant PV2_1/PV2_2".into(),
            ));
        }
        let sip = match dist1.as_deref() {
            None => None,
            Some("SIP") => Some(Sip::from_header(h)?),
            Some(other) => return Err(WcsError::UnsupportedProjection(format!("{code1}-{other}"))),
        };
        let num = |k: &str| -> Result<f64, WcsError> {
            h.f64(k)
                .filter(|v| v.is_finite())
                .ok_or_else(|| WcsError::BadKeyword(k.to_string()))
        };
        let crpix = [num("CRPIX1")?, num("CRPIX2")?];
        let mut crval = [num("CRVAL1")?, num("CRVAL2")?];
        if swapped {
            crval.swap(0, 1);
        }
        let cd = linear_matrix(h)?;
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        if det == 0.0 || !det.is_finite() {
            return Err(WcsError::Singular);
        }
        // Zenithal: θ0 = 90°, so LONPOLE defaults to 180° unless δ0 = 90°.
        let default_lonpole = if crval[1] >= 90.0 { 0.0 } else { 180.0 };
        let lonpole = h.f64("LONPOLE").unwrap_or(default_lonpole);
        Ok(Wcs {
            ctype: [c1, c2],
            frame,
            projection,
            crpix,
            crval,
            cd,
            lonpole,
            sip,
            swapped,
        })
    }

    pub fn has_sip(&self) -> bool {
        self.sip.is_some()
    }

    /// Sky position (degrees, in the WCS's own frame, longitude in [0, 360)) of the 0-based
    /// pixel (x, y), or `None` when the pixel is off the sky.
    pub fn pix2world(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let mut u = x + 1.0 - self.crpix[0];
        let mut v = y + 1.0 - self.crpix[1];
        if let Some(sip) = &self.sip {
            (u, v) = sip.apply(u, v);
        }
        let mut px = self.cd[0][0] * u + self.cd[0][1] * v;
        let mut py = self.cd[1][0] * u + self.cd[1][1] * v;
        if self.swapped {
            std::mem::swap(&mut px, &mut py);
        }
        // Zenithal projections: R and φ in the plane of projection.
        let r = px.hypot(py);
        let phi = if r == 0.0 {
            0.0
        } else {
            px.atan2(-py).to_degrees()
        };
        let theta = self.projection.theta(r)?;
        let (lon, lat) =
            native_to_celestial(phi, theta, self.crval[0], self.crval[1], self.lonpole);
        if !lon.is_finite() || !lat.is_finite() {
            return None;
        }
        Some((lon, lat))
    }

    /// Sky position in ICRS degrees of the 0-based pixel (x, y).
    pub fn pix2icrs(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (lon, lat) = self.pix2world(x, y)?;
        Some(match self.frame {
            Frame::Equatorial => (lon, lat),
            Frame::Galactic => galactic_to_icrs(lon, lat),
        })
    }

    /// Approximate pixel scale in arcseconds (square root of |det CD|).
    pub fn pixel_scale_arcsec(&self) -> f64 {
        let det = self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0];
        det.abs().sqrt() * 3600.0
    }
}

fn is_lat(ctype: &str) -> bool {
    matches!(axis_kind(ctype), Some(("DEC", _)) | Some(("GLAT", _)))
}

/// The coordinate part of a CTYPE (`RA`, `DEC`, `GLON`, `GLAT`) and the rest.
fn axis_kind(ctype: &str) -> Option<(&'static str, &str)> {
    for k in ["RA", "DEC", "GLON", "GLAT"] {
        if let Some(rest) = ctype.strip_prefix(k)
            && (rest.is_empty() || rest.starts_with('-'))
        {
            return Some((k, rest));
        }
    }
    None
}

/// Projection code and optional distortion suffix of a CTYPE such as `RA---TAN-SIP`.
fn projection_code(ctype: &str) -> Result<(String, Option<String>), WcsError> {
    if ctype.len() < 8 {
        return Err(WcsError::UnsupportedCtype(ctype.to_string()));
    }
    let code = ctype
        .get(5..8)
        .ok_or_else(|| WcsError::UnsupportedCtype(ctype.into()))?;
    let dist = ctype
        .get(8..)
        .and_then(|s| s.strip_prefix('-'))
        .map(|s| s.to_string());
    Ok((code.to_string(), dist))
}

/// CD matrix from CDi_j, or PCi_j × CDELTi, or CDELTi with CROTA2.
fn linear_matrix(h: &Header) -> Result<[[f64; 2]; 2], WcsError> {
    let has_cd = ["CD1_1", "CD1_2", "CD2_1", "CD2_2"]
        .iter()
        .any(|k| h.contains(k));
    if has_cd {
        return Ok([
            [h.f64("CD1_1").unwrap_or(0.0), h.f64("CD1_2").unwrap_or(0.0)],
            [h.f64("CD2_1").unwrap_or(0.0), h.f64("CD2_2").unwrap_or(0.0)],
        ]);
    }
    let cdelt1 = h
        .f64("CDELT1")
        .ok_or(WcsError::BadKeyword("CDELT1".into()))?;
    let cdelt2 = h
        .f64("CDELT2")
        .ok_or(WcsError::BadKeyword("CDELT2".into()))?;
    let has_pc = ["PC1_1", "PC1_2", "PC2_1", "PC2_2"]
        .iter()
        .any(|k| h.contains(k));
    if has_pc {
        let pc = [
            [h.f64("PC1_1").unwrap_or(1.0), h.f64("PC1_2").unwrap_or(0.0)],
            [h.f64("PC2_1").unwrap_or(0.0), h.f64("PC2_2").unwrap_or(1.0)],
        ];
        return Ok([
            [cdelt1 * pc[0][0], cdelt1 * pc[0][1]],
            [cdelt2 * pc[1][0], cdelt2 * pc[1][1]],
        ]);
    }
    let rho = h.f64("CROTA2").unwrap_or(0.0).to_radians();
    let (s, c) = rho.sin_cos();
    Ok([[cdelt1 * c, -cdelt2 * s], [cdelt1 * s, cdelt2 * c]])
}

/// Paper II eq. (2): native (φ, θ) → celestial (α, δ) for a native pole at (αp, δp) with
/// native longitude φp of the celestial pole. All degrees; α in [0, 360).
fn native_to_celestial(phi: f64, theta: f64, ap: f64, dp: f64, php: f64) -> (f64, f64) {
    let (st, ct) = theta.to_radians().sin_cos();
    let (sdp, cdp) = dp.to_radians().sin_cos();
    let dphi = (phi - php).to_radians();
    let (sdphi, cdphi) = dphi.sin_cos();
    let x = st * cdp - ct * sdp * cdphi;
    let y = -ct * sdphi;
    let alpha = ap + y.atan2(x).to_degrees();
    let delta = (st * sdp + ct * cdp * cdphi)
        .clamp(-1.0, 1.0)
        .asin()
        .to_degrees();
    (alpha.rem_euclid(360.0), delta)
}

/// Galactic (l, b) → ICRS (α, δ), degrees, with the ICRS-to-galactic rotation of the
/// Hipparcos catalogue (ESA 1997, vol. 1, §1.5.3).
pub fn galactic_to_icrs(l: f64, b: f64) -> (f64, f64) {
    const M: [[f64; 3]; 3] = [
        [
            -0.054_875_560_416_215_4,
            -0.873_437_090_234_885,
            -0.483_835_015_548_713_2,
        ],
        [
            0.494_109_427_875_583_7,
            -0.444_829_629_960_011_2,
            0.746_982_244_497_219,
        ],
        [
            -0.867_666_149_019_004_7,
            -0.198_076_373_431_201_5,
            0.455_983_776_175_066_9,
        ],
    ];
    let (sl, cl) = l.to_radians().sin_cos();
    let (sb, cb) = b.to_radians().sin_cos();
    let g = [cb * cl, cb * sl, sb];
    // ICRS = Mᵀ g.
    let e = [
        M[0][0] * g[0] + M[1][0] * g[1] + M[2][0] * g[2],
        M[0][1] * g[0] + M[1][1] * g[1] + M[2][1] * g[2],
        M[0][2] * g[0] + M[1][2] * g[1] + M[2][2] * g[2],
    ];
    let ra = e[1].atan2(e[0]).to_degrees().rem_euclid(360.0);
    let dec = e[2].clamp(-1.0, 1.0).asin().to_degrees();
    (ra, dec)
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

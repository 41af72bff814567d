//! The spherical rotation between native (φ, θ) and celestial (α, δ) coordinates
//! (Calabretta & Greisen 2002, §2.3–2.4), with WCSLIB's choice of the native pole (LONPOLE,
//! LATPOLE defaults and the two-solution rule) so that results match astropy.wcs.

const D2R: f64 = std::f64::consts::PI / 180.0;
const TOL: f64 = 1e-10;

fn sincosd(a: f64) -> (f64, f64) {
    (a * D2R).sin_cos()
}

/// The rotation, as the celestial coordinates of the native pole (αp, δp) and the native
/// longitude φp of the celestial pole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    pub alpha_p: f64,
    pub delta_p: f64,
    pub phi_p: f64,
}

impl Rotation {
    /// From the fiducial point: celestial (α0, δ0) = CRVAL, native (φ0, θ0) of the
    /// projection, LONPOLE (`None`: the default) and LATPOLE (default +90).
    pub fn new(
        alpha0: f64,
        delta0: f64,
        phi0: f64,
        theta0: f64,
        lonpole: Option<f64>,
        latpole: Option<f64>,
    ) -> Result<Rotation, super::WcsError> {
        let mut phip = match lonpole {
            Some(v) => v,
            None => {
                let mut p = if delta0 < theta0 { 180.0 } else { 0.0 } + phi0;
                if p < -180.0 {
                    p += 360.0;
                } else if p > 180.0 {
                    p -= 360.0;
                }
                p
            }
        };
        if !phip.is_finite() {
            phip = 180.0;
        }
        let mut latp = latpole.unwrap_or(90.0);
        let (lngp, latp) = if theta0 == 90.0 {
            (alpha0, delta0)
        } else {
            let (slat0, clat0) = sincosd(delta0);
            let (sthe0, cthe0) = sincosd(theta0);
            let (sphip, cphip, u, v, latp_given) = if phip == phi0 {
                (0.0, 1.0, theta0, 90.0 - delta0, false)
            } else {
                let (sphip, cphip) = sincosd(phip - phi0);
                let x = cthe0 * cphip;
                let y = sthe0;
                let z = (x * x + y * y).sqrt();
                if z == 0.0 {
                    if slat0 != 0.0 {
                        return Err(super::WcsError::BadParameters(
                            "invalid WCS: |LONPOLE - phi0| = 90 and theta0 = 0 need CRVAL2 = 0"
                                .into(),
                        ));
                    }
                    latp = latp.clamp(-90.0, 90.0);
                    (sphip, cphip, 0.0, 0.0, true)
                } else {
                    let mut slz = slat0 / z;
                    if slz.abs() > 1.0 {
                        if slz.abs() - 1.0 < TOL {
                            slz = slz.signum();
                        } else {
                            return Err(super::WcsError::BadParameters(
                                "invalid WCS: no native pole for these CRVAL/LONPOLE values".into(),
                            ));
                        }
                    }
                    (sphip, cphip, y.atan2(x) / D2R, slz.acos() / D2R, false)
                }
            };
            let _ = cphip;
            if !latp_given {
                let norm = |mut v: f64| {
                    if v > 180.0 {
                        v -= 360.0;
                    } else if v < -180.0 {
                        v += 360.0;
                    }
                    v
                };
                let latp1 = norm(u + v);
                let latp2 = norm(u - v);
                latp = if (latp - latp1).abs() < (latp - latp2).abs() {
                    if latp1.abs() < 90.0 + TOL {
                        latp1
                    } else {
                        latp2
                    }
                } else if latp2.abs() < 90.0 + TOL {
                    latp2
                } else {
                    latp1
                };
                if latp.abs() < 90.0 + TOL {
                    latp = latp.clamp(-90.0, 90.0);
                }
            }
            let z = (latp * D2R).cos() * clat0;
            let lngp = if z.abs() < TOL {
                if clat0.abs() < TOL {
                    alpha0
                } else if latp > 0.0 {
                    alpha0 + phip - phi0 - 180.0
                } else {
                    alpha0 - phip + phi0
                }
            } else {
                let x = (sthe0 - (latp * D2R).sin() * slat0) / z;
                let y = sphip * cthe0 / clat0;
                if x == 0.0 && y == 0.0 {
                    return Err(super::WcsError::BadParameters(
                        "invalid WCS rotation".into(),
                    ));
                }
                alpha0 - y.atan2(x) / D2R
            };
            let lngp = if alpha0 >= 0.0 {
                if lngp < 0.0 {
                    lngp + 360.0
                } else if lngp > 360.0 {
                    lngp - 360.0
                } else {
                    lngp
                }
            } else if lngp > 0.0 {
                lngp - 360.0
            } else if lngp < -360.0 {
                lngp + 360.0
            } else {
                lngp
            };
            if latp.abs() > 90.0 + TOL {
                return Err(super::WcsError::BadParameters(
                    "ill-conditioned WCS: no valid native pole".into(),
                ));
            }
            (lngp, latp)
        };
        Ok(Rotation {
            alpha_p: lngp,
            delta_p: latp,
            phi_p: phip,
        })
    }

    /// Native (φ, θ) → celestial (α, δ), degrees, α in [0, 360).
    pub fn to_celestial(&self, phi: f64, theta: f64) -> (f64, f64) {
        let (st, ct) = sincosd(theta);
        let (sdp, cdp) = sincosd(self.delta_p);
        let (sdphi, cdphi) = sincosd(phi - self.phi_p);
        let mut x = st * cdp - ct * sdp * cdphi;
        if x.abs() < 1e-5 {
            // Alternative formula for accuracy near x = 0.
            x = -((theta + 90.0 - self.delta_p) * D2R).cos() + ct * sdp * (1.0 - cdphi);
        }
        let y = -ct * sdphi;
        let dlng = if x != 0.0 || y != 0.0 {
            y.atan2(x) / D2R
        } else {
            phi - self.phi_p - 180.0
        };
        let lng = (self.alpha_p + dlng).rem_euclid(360.0);
        let z = st * sdp + ct * cdp * cdphi;
        let lat = if z.abs() > 0.99 {
            (x.hypot(y)).min(1.0).acos().copysign(z) / D2R
        } else {
            z.asin() / D2R
        };
        (lng, lat)
    }

    /// Celestial (α, δ) → native (φ, θ), degrees, φ in [-180, 180].
    pub fn to_native(&self, lng: f64, lat: f64) -> (f64, f64) {
        let (sl, cl) = sincosd(lat);
        let (sdp, cdp) = sincosd(self.delta_p);
        let (sdl, cdl) = sincosd(lng - self.alpha_p);
        let mut x = sl * cdp - cl * sdp * cdl;
        if x.abs() < 1e-5 {
            x = -((lat + 90.0 - self.delta_p) * D2R).cos() + cl * sdp * (1.0 - cdl);
        }
        let y = -cl * sdl;
        let dphi = if x != 0.0 || y != 0.0 {
            y.atan2(x) / D2R
        } else {
            lng - self.alpha_p - 180.0
        };
        let mut phi = self.phi_p + dphi;
        phi = (phi + 180.0).rem_euclid(360.0) - 180.0;
        let z = sl * sdp + cl * cdp * cdl;
        let theta = if z.abs() > 0.99 {
            (x.hypot(y)).min(1.0).acos().copysign(z) / D2R
        } else {
            z.asin() / D2R
        };
        (phi, theta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zenithal_round_trip() {
        let r = Rotation::new(150.0, 30.0, 0.0, 90.0, None, None).unwrap();
        assert_eq!((r.alpha_p, r.delta_p, r.phi_p), (150.0, 30.0, 180.0));
        let (a, d) = r.to_celestial(0.0, 90.0);
        assert!((a - 150.0).abs() < 1e-12 && (d - 30.0).abs() < 1e-12);
        let (p, t) = r.to_native(151.0, 31.5);
        let (a, d) = r.to_celestial(p, t);
        assert!((a - 151.0).abs() < 1e-10 && (d - 31.5).abs() < 1e-10);
    }

    #[test]
    fn cylindrical_at_origin_is_the_identity() {
        let r = Rotation::new(0.0, 0.0, 0.0, 0.0, None, None).unwrap();
        let (a, d) = r.to_celestial(25.0, -10.0);
        assert!(
            (a - 25.0).abs() < 1e-10 && (d + 10.0).abs() < 1e-10,
            "{a} {d}"
        );
    }
}

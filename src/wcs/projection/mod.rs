//! The spherical projections of Calabretta & Greisen (2002, "Representations of celestial
//! coordinates in FITS", A&A 395, 1077) and Calabretta & Roukema (2007, HEALPix), with the
//! parameter defaults, fiducial points and validity rules of WCSLIB (the reference behind
//! astropy.wcs), so that the same pixels are on or off the sky.
//!
//! `x2s` maps projection-plane coordinates (x, y) in degrees to native spherical (φ, θ) in
//! degrees; `s2x` is the inverse. Both return `None` outside the projection's domain.
//!
//! One file per family, as WCSLIB groups them: [`zenithal`], [`cylindrical`],
//! [`pseudocylindrical`], [`conic`], [`polyconic`], [`quadcube`], [`healpix`].

mod conic;
mod cylindrical;
mod healpix;
mod math;
mod polyconic;
mod pseudocylindrical;
mod quadcube;
mod zenithal;

use math::*;

/// A projection with its parameters (PVi_m of the latitude axis) already resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    Azp {
        mu: f64,
        gamma: f64,
    },
    Szp {
        mu: f64,
        xp: f64,
        yp: f64,
        zp: f64,
    },
    Tan,
    Stg,
    Sin {
        xi: f64,
        eta: f64,
    },
    Arc,
    Zpn {
        coeffs: Vec<f64>,
        zd_max: f64,
        r_max: f64,
    },
    Zea,
    Air {
        cxi: f64,
    },
    Cyp {
        mu: f64,
        lambda: f64,
    },
    Cea {
        lambda: f64,
    },
    Car,
    Mer,
    Sfl,
    Par,
    Mol,
    Ait,
    Cop {
        sigma: f64,
        c: f64,
        y0: f64,
        rcos: f64,
        cot: f64,
    },
    Coe {
        sigma: f64,
        c: f64,
        y0: f64,
        chi: f64,
        psi: f64,
        r_south: f64,
    },
    Cod {
        sigma: f64,
        c: f64,
        y0: f64,
    },
    Coo {
        sigma: f64,
        c: f64,
        y0: f64,
        psi: f64,
    },
    Bon {
        theta1: f64,
        y0: f64,
    },
    Pco,
    Tsc,
    Csc,
    Qsc,
    Hpx {
        h: f64,
        k: f64,
    },
}

/// Why a projection cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown projection {0}")]
    Unknown(String),
    /// The PV parameters are out of the projection's range (the reason says how).
    #[error("{0}")]
    Invalid(String),
}

impl Projection {
    /// Builds a projection from its code and the PV2_m parameters (`pv[m]`, `None` if
    /// absent).
    pub fn new(code: &str, pv: &[Option<f64>]) -> Result<Projection, ParamError> {
        let p = |m: usize| pv.get(m).copied().flatten();
        let bad = |why: &str| Err(ParamError::Invalid(format!("{code}: {why}")));
        Ok(match code {
            "AZP" => {
                let (mu, gamma) = (p(1).unwrap_or(0.0), p(2).unwrap_or(0.0));
                if mu == -1.0 || cosd(gamma) == 0.0 {
                    return bad("invalid PV2_1/PV2_2");
                }
                Projection::Azp { mu, gamma }
            }
            "SZP" => {
                let (mu, phic, thetac) = (
                    p(1).unwrap_or(0.0),
                    p(2).unwrap_or(0.0),
                    p(3).unwrap_or(90.0),
                );
                let zp = mu * sind(thetac) + 1.0;
                if zp == 0.0 {
                    return bad("invalid PV2_1/PV2_3");
                }
                Projection::Szp {
                    mu,
                    xp: -mu * cosd(thetac) * sind(phic),
                    yp: mu * cosd(thetac) * cosd(phic),
                    zp,
                }
            }
            "TAN" => Projection::Tan,
            "STG" => Projection::Stg,
            "SIN" => Projection::Sin {
                xi: p(1).unwrap_or(0.0),
                eta: p(2).unwrap_or(0.0),
            },
            "ARC" => Projection::Arc,
            "ZPN" => {
                let mut coeffs: Vec<f64> = (0..30).map(|m| p(m).unwrap_or(0.0)).collect();
                while coeffs.last() == Some(&0.0) {
                    coeffs.pop();
                }
                if coeffs.len() < 2 {
                    return bad("needs PV2_1 at least");
                }
                let (zd_max, r_max) = zenithal::zpn_limits(&coeffs)?;
                Projection::Zpn {
                    coeffs,
                    zd_max,
                    r_max,
                }
            }
            "ZEA" => Projection::Zea,
            "AIR" => {
                let tb = p(1).unwrap_or(90.0);
                let cxi = if tb == 90.0 {
                    -0.5
                } else if tb > -90.0 {
                    let c = cosd((90.0 - tb) / 2.0);
                    c.ln() * c * c / (1.0 - c * c)
                } else {
                    return bad("PV2_1 must exceed -90");
                };
                Projection::Air { cxi }
            }
            "CYP" => {
                let (mu, lambda) = (p(1).unwrap_or(1.0), p(2).unwrap_or(1.0));
                if lambda == 0.0 || mu + lambda == 0.0 {
                    return bad("invalid PV2_1/PV2_2");
                }
                Projection::Cyp { mu, lambda }
            }
            "CEA" => {
                let lambda = p(1).unwrap_or(1.0);
                if lambda <= 0.0 || lambda > 1.0 {
                    return bad("PV2_1 must be in (0, 1]");
                }
                Projection::Cea { lambda }
            }
            "CAR" => Projection::Car,
            "MER" => Projection::Mer,
            "SFL" => Projection::Sfl,
            "PAR" => Projection::Par,
            "MOL" => Projection::Mol,
            "AIT" => Projection::Ait,
            "COP" | "COE" | "COD" | "COO" => {
                let sigma = match p(1) {
                    Some(s) => s,
                    None => return bad("conic projections need PV2_1"),
                };
                let delta = p(2).unwrap_or(0.0);
                conic::new(code, sigma, delta)?
            }
            "BON" => {
                let theta1 = match p(1) {
                    Some(t) => t,
                    None => return bad("BON needs PV2_1"),
                };
                if theta1 == 0.0 {
                    Projection::Sfl
                } else {
                    Projection::Bon {
                        theta1,
                        y0: R0 * cosd(theta1) / sind(theta1) + theta1,
                    }
                }
            }
            "PCO" => Projection::Pco,
            "TSC" => Projection::Tsc,
            "CSC" => Projection::Csc,
            "QSC" => Projection::Qsc,
            "HPX" => {
                let (h, k) = (p(1).unwrap_or(4.0), p(2).unwrap_or(3.0));
                if h <= 0.0 || k <= 0.0 {
                    return bad("PV2_1 and PV2_2 must be positive");
                }
                Projection::Hpx { h, k }
            }
            other => return Err(ParamError::Unknown(other.to_string())),
        })
    }

    /// Native coordinates (φ0, θ0) of the fiducial point (C&G table 13).
    pub fn fiducial(&self) -> (f64, f64) {
        match self {
            Projection::Azp { .. }
            | Projection::Szp { .. }
            | Projection::Tan
            | Projection::Stg
            | Projection::Sin { .. }
            | Projection::Arc
            | Projection::Zpn { .. }
            | Projection::Zea
            | Projection::Air { .. } => (0.0, 90.0),
            Projection::Cop { sigma, .. }
            | Projection::Coe { sigma, .. }
            | Projection::Cod { sigma, .. }
            | Projection::Coo { sigma, .. } => (0.0, *sigma),
            _ => (0.0, 0.0),
        }
    }

    /// Projection plane (x, y), degrees → native (φ, θ), degrees.    /// Projection plane (x, y), degrees → native (φ, θ), degrees.
    pub fn x2s(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (phi, theta) = match self.family() {
            Family::Zenithal => zenithal::x2s(self, x, y)?,
            Family::Cylindrical => cylindrical::x2s(self, x, y)?,
            Family::Pseudocylindrical => pseudocylindrical::x2s(self, x, y)?,
            Family::Conic => conic::x2s(self, x, y)?,
            Family::Polyconic => polyconic::x2s(self, x, y)?,
            Family::Quadcube => quadcube::x2s(self, x, y)?,
            Family::Healpix => healpix::x2s(self, x, y)?,
        };
        // WCSLIB's bounds check on native coordinates.
        let tol = 1e-11;
        if !(phi.is_finite() && theta.is_finite())
            || phi.abs() > 180.0 + tol
            || theta.abs() > 90.0 + tol
        {
            return None;
        }
        Some((phi.clamp(-180.0, 180.0), theta.clamp(-90.0, 90.0)))
    }

    /// Native (φ, θ), degrees → projection plane (x, y), degrees.
    pub fn s2x(&self, phi: f64, theta: f64) -> Option<(f64, f64)> {
        match self.family() {
            Family::Zenithal => zenithal::s2x(self, phi, theta),
            Family::Cylindrical => cylindrical::s2x(self, phi, theta),
            Family::Pseudocylindrical => pseudocylindrical::s2x(self, phi, theta),
            Family::Conic => conic::s2x(self, phi, theta),
            Family::Polyconic => polyconic::s2x(self, phi, theta),
            Family::Quadcube => quadcube::s2x(self, phi, theta),
            Family::Healpix => healpix::s2x(self, phi, theta),
        }
    }

    /// The family (and so the file) a projection belongs to.
    fn family(&self) -> Family {
        use Projection as P;
        match self {
            P::Azp { .. }
            | P::Szp { .. }
            | P::Tan
            | P::Stg
            | P::Sin { .. }
            | P::Arc
            | P::Zpn { .. }
            | P::Zea
            | P::Air { .. } => Family::Zenithal,
            P::Cyp { .. } | P::Cea { .. } | P::Car | P::Mer => Family::Cylindrical,
            P::Sfl | P::Par | P::Mol | P::Ait => Family::Pseudocylindrical,
            P::Cop { .. } | P::Coe { .. } | P::Cod { .. } | P::Coo { .. } => Family::Conic,
            P::Bon { .. } | P::Pco => Family::Polyconic,
            P::Tsc | P::Csc | P::Qsc => Family::Quadcube,
            P::Hpx { .. } => Family::Healpix,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Zenithal,
    Cylindrical,
    Pseudocylindrical,
    Conic,
    Polyconic,
    Quadcube,
    Healpix,
}

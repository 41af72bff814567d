//! The spherical projections of Calabretta & Greisen (2002, "Representations of celestial
//! coordinates in FITS", A&A 395, 1077) and Calabretta & Roukema (2007, HEALPix), with the
//! parameter defaults, fiducial points and validity rules of WCSLIB (the reference behind
//! astropy.wcs), so that the same pixels are on or off the sky.
//!
//! `x2s` maps projection-plane coordinates (x, y) in degrees to native spherical (φ, θ) in
//! degrees; `s2x` is the inverse. Both return `None` outside the projection's domain.

const R0: f64 = 180.0 / std::f64::consts::PI;
const D2R: f64 = std::f64::consts::PI / 180.0;
const TOL: f64 = 1e-13;

#[inline]
fn sind(a: f64) -> f64 {
    (a * D2R).sin()
}
#[inline]
fn cosd(a: f64) -> f64 {
    (a * D2R).cos()
}
#[inline]
fn tand(a: f64) -> f64 {
    (a * D2R).tan()
}
#[inline]
fn asind(v: f64) -> f64 {
    v.asin() / D2R
}
#[inline]
fn acosd(v: f64) -> f64 {
    v.acos() / D2R
}
#[inline]
fn atand(v: f64) -> f64 {
    v.atan() / D2R
}
#[inline]
fn atan2d(y: f64, x: f64) -> f64 {
    y.atan2(x) / D2R
}

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

/// Why a projection's parameters are unusable.
pub type ParamError = String;

impl Projection {
    /// Builds a projection from its code and the PV2_m parameters (`pv[m]`, `None` if
    /// absent).
    pub fn new(code: &str, pv: &[Option<f64>]) -> Result<Projection, ParamError> {
        let p = |m: usize| pv.get(m).copied().flatten();
        let bad = |why: &str| Err(format!("{code}: {why}"));
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
                let (zd_max, r_max) = zpn_limits(&coeffs)?;
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
                conic(code, sigma, delta)?
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
            other => return Err(format!("unknown projection {other}")),
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

    /// Projection plane (x, y), degrees → native (φ, θ), degrees.
    pub fn x2s(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let r = (x * x + y * y).sqrt();
        let phi_z = || if r == 0.0 { 0.0 } else { atan2d(x, -y) };
        let (phi, theta) = match self {
            Projection::Azp { mu, gamma } => {
                let (cg, sg) = (cosd(*gamma), sind(*gamma));
                let yc = y * cg;
                let rr = (x * x + yc * yc).sqrt();
                if rr == 0.0 {
                    (0.0, 90.0)
                } else {
                    let q = R0 * (mu + 1.0) + y * sg;
                    let s = rr / q;
                    let t = s * mu / (s * s + 1.0).sqrt();
                    let s = atan2d(1.0, s);
                    let t = if t.abs() > 1.0 {
                        if t.abs() > 1.0 + TOL {
                            return None;
                        }
                        90f64.copysign(t)
                    } else {
                        asind(t)
                    };
                    let mut a = s - t;
                    let mut b = s + t + 180.0;
                    if a > 90.0 {
                        a -= 360.0;
                    }
                    if b > 90.0 {
                        b -= 360.0;
                    }
                    (atan2d(x, -yc), a.max(b))
                }
            }
            Projection::Szp { xp, yp, zp, .. } => {
                let (xr, yr) = (x / R0, y / R0);
                let r2 = xr * xr + yr * yr;
                let x1 = (xr - xp) / zp;
                let y1 = (yr - yp) / zp;
                let xy = xr * x1 + yr * y1;
                let (theta, z) = if r2 < 1e-10 {
                    (90.0 - R0 * (r2 / (1.0 + xy)).sqrt(), r2 / 2.0)
                } else {
                    let t = x1 * x1 + y1 * y1;
                    let a = t + 1.0;
                    let b = xy - t;
                    let c = r2 - xy - xy + t - 1.0;
                    let sinthe = pick_sin_root(a, b, c)?;
                    (asind(sinthe), 1.0 - sinthe)
                };
                (atan2d(xr - x1 * z, -(yr - y1 * z)), theta)
            }
            Projection::Tan => (phi_z(), atan2d(R0, r)),
            Projection::Stg => (phi_z(), 90.0 - 2.0 * atand(r / (2.0 * R0))),
            Projection::Sin { xi, eta } => {
                let (x0, y0) = (x / R0, y / R0);
                let r2 = x0 * x0 + y0 * y0;
                if *xi == 0.0 && *eta == 0.0 {
                    let phi = if r2 != 0.0 { atan2d(x0, -y0) } else { 0.0 };
                    let theta = if r2 < 0.5 {
                        acosd(r2.sqrt())
                    } else if r2 <= 1.0 {
                        asind((1.0 - r2).sqrt())
                    } else {
                        return None;
                    };
                    (phi, theta)
                } else {
                    let w1 = xi * xi + eta * eta;
                    let xy = x0 * xi + y0 * eta;
                    let (theta, z) = if r2 < 1e-10 {
                        (90.0 - R0 * (r2 / (1.0 + xy)).sqrt(), r2 / 2.0)
                    } else {
                        let a = w1 + 1.0;
                        let b = xy - w1;
                        let c = r2 - xy - xy + (w1 - 1.0);
                        let sinthe = pick_sin_root(a, b, c)?;
                        (asind(sinthe), 1.0 - sinthe)
                    };
                    let x1 = -y0 + eta * z;
                    let y1 = x0 - xi * z;
                    (
                        if x1 == 0.0 && y1 == 0.0 {
                            0.0
                        } else {
                            atan2d(y1, x1)
                        },
                        theta,
                    )
                }
            }
            Projection::Arc => (phi_z(), if r == 0.0 { 90.0 } else { 90.0 - r }),
            Projection::Zpn {
                coeffs,
                zd_max,
                r_max,
            } => {
                let rr = r / R0;
                let zd = zpn_invert(coeffs, *zd_max, *r_max, rr)?;
                (phi_z(), 90.0 - zd / D2R)
            }
            Projection::Zea => {
                let s = r / (2.0 * R0);
                let theta = if s.abs() > 1.0 {
                    if (r - 2.0 * R0).abs() < 1e-12 {
                        -90.0
                    } else {
                        return None;
                    }
                } else {
                    90.0 - 2.0 * asind(s)
                };
                (phi_z(), theta)
            }
            Projection::Air { cxi } => {
                let rr = r / (2.0 * R0);
                let w2 = 0.5 - cxi;
                let xi = if rr == 0.0 {
                    0.0
                } else if rr < w2 * 1e-4 {
                    rr * R0 / w2
                } else {
                    air_invert(*cxi, rr)?
                };
                (phi_z(), 90.0 - 2.0 * xi)
            }
            Projection::Cyp { mu, lambda } => {
                let phi = x / lambda;
                let eta = y / (R0 * (mu + lambda));
                (
                    phi,
                    atan2d(eta, 1.0) + asind(eta * mu / (eta * eta + 1.0).sqrt()),
                )
            }
            Projection::Cea { lambda } => {
                let s = y * lambda / R0;
                let theta = if s.abs() > 1.0 {
                    if s.abs() > 1.0 + 1e-13 {
                        return None;
                    }
                    90f64.copysign(s)
                } else {
                    asind(s)
                };
                (x, theta)
            }
            Projection::Car => (x, y),
            Projection::Mer => (x, 2.0 * atand((y / R0).exp()) - 90.0),
            Projection::Sfl => {
                let c = (y / R0).cos();
                if c == 0.0 {
                    return None;
                }
                (x / c, y)
            }
            Projection::Par => {
                let rr = y / (std::f64::consts::PI * R0);
                if rr.abs() > 1.0 {
                    return None;
                }
                let s = 1.0 - 4.0 * rr * rr;
                let theta = 3.0 * asind(rr);
                if s == 0.0 {
                    if x.abs() - 1e-13 >= 0.0 {
                        return None;
                    }
                    (0.0, theta)
                } else {
                    (x / s, theta)
                }
            }
            Projection::Mol => {
                let tol = 1e-12;
                let y0 = y / R0;
                let mut rr = 2.0 - y0 * y0;
                let mut deferred = false;
                let s = if rr <= tol {
                    if rr < -tol {
                        return None;
                    }
                    deferred = true;
                    rr = 0.0;
                    0.0
                } else {
                    rr = rr.sqrt();
                    1.0 / rr
                };
                let mut z = y / (std::f64::consts::SQRT_2 * R0);
                if z.abs() > 1.0 {
                    if z.abs() > 1.0 + tol {
                        return None;
                    }
                    z = 1f64.copysign(z) + y0 * rr / std::f64::consts::PI;
                } else {
                    z = z.asin() * 2.0 / std::f64::consts::PI + y0 * rr / std::f64::consts::PI;
                }
                if z.abs() > 1.0 {
                    if z.abs() > 1.0 + tol {
                        return None;
                    }
                    z = 1f64.copysign(z);
                }
                if deferred && x.abs() - tol >= 0.0 {
                    return None;
                }
                (90.0 / R0 * x * s, asind(z))
            }
            Projection::Ait => {
                let tol = 1e-13;
                let w1 = 1.0 / (4.0 * R0 * R0);
                let mut s = 1.0 - x * x * (w1 / 4.0) - y * y * w1;
                if s < 0.5 {
                    if s < 0.5 - tol {
                        return None;
                    }
                    s = 0.5;
                }
                let z = s.sqrt();
                let x0 = 2.0 * z * z - 1.0;
                let y0 = z * x / (2.0 * R0);
                let phi = if x0 == 0.0 && y0 == 0.0 {
                    0.0
                } else {
                    2.0 * atan2d(y0, x0)
                };
                let t = z * y / R0;
                let theta = if t.abs() > 1.0 {
                    if t.abs() > 1.0 + tol {
                        return None;
                    }
                    90f64.copysign(t)
                } else {
                    asind(t)
                };
                (phi, theta)
            }
            Projection::Cop {
                sigma,
                c,
                y0,
                rcos,
                cot,
            } => {
                let (rr, alpha) = conic_polar(x, y, *y0, *sigma);
                (alpha / c, sigma + atand(cot - rr / rcos))
            }
            Projection::Coe {
                sigma,
                c,
                y0,
                chi,
                psi,
                r_south,
            } => {
                let (rr, alpha) = conic_polar(x, y, *y0, *sigma);
                let tol = 1e-12;
                let theta = if (rr - r_south).abs() < tol {
                    -90.0
                } else {
                    let w = (chi * chi * psi - rr * rr) * (c / (2.0 * R0 * R0));
                    if w.abs() > 1.0 {
                        if (w - 1.0).abs() < tol {
                            90.0
                        } else if (w + 1.0).abs() < tol {
                            -90.0
                        } else {
                            return None;
                        }
                    } else {
                        asind(w)
                    }
                };
                (alpha / c, theta)
            }
            Projection::Cod { sigma, c, y0 } => {
                let (rr, alpha) = conic_polar(x, y, *y0, *sigma);
                (alpha / c, y0 + sigma - rr)
            }
            Projection::Coo { sigma, c, y0, psi } => {
                let (rr, alpha) = conic_polar(x, y, *y0, *sigma);
                let theta = if rr == 0.0 {
                    if *c < 0.0 {
                        -90.0
                    } else {
                        return None;
                    }
                } else {
                    90.0 - 2.0 * atand((rr / psi).powf(1.0 / c))
                };
                (alpha / c, theta)
            }
            Projection::Bon { theta1, y0 } => {
                let (rr, alpha) = conic_polar(x, y, *y0, *theta1);
                let t = y0 - rr;
                let ct = cosd(t);
                let s = if ct == 0.0 {
                    0.0
                } else {
                    alpha * (rr / R0) / ct
                };
                (s, t)
            }
            Projection::Pco => pco_x2s(x, y),
            Projection::Tsc | Projection::Csc | Projection::Qsc => {
                let (face, xf, yf) = cube_face(x / 45.0, y / 45.0)?;
                let (l, m, n) = match self {
                    Projection::Tsc => tsc_lmn(face, xf, yf),
                    Projection::Csc => csc_lmn(face, xf as f32, yf as f32),
                    _ => qsc_lmn(face, xf, yf)?,
                };
                (
                    if l == 0.0 && m == 0.0 {
                        0.0
                    } else {
                        atan2d(m, l)
                    },
                    asind(n),
                )
            }
            Projection::Hpx { h, k } => hpx_x2s(*h, *k, x, y)?,
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
        let (sp, cp) = (sind(phi), cosd(phi));
        let zen = |r: f64| (r * sp, -r * cp);
        match self {
            Projection::Azp { mu, gamma } => {
                let (st, ct) = (sind(theta), cosd(theta));
                let tg = tand(*gamma);
                let s = tg * cp;
                let t = (mu + st) + ct * s;
                if t == 0.0 {
                    return None;
                }
                let r = R0 * (mu + 1.0) * ct / t;
                let w5 = if mu.abs() > 1.0 {
                    asind(-1.0 / mu)
                } else {
                    -90.0
                };
                if theta < w5 {
                    return None;
                }
                if (mu * cosd(*gamma)).abs() < 1.0 {
                    let tt = mu / (1.0 + s * s).sqrt();
                    if tt.abs() <= 1.0 {
                        let ss = atand(-s);
                        let tt = asind(tt);
                        let mut a = ss - tt;
                        let mut b = ss + tt + 180.0;
                        if a > 90.0 {
                            a -= 360.0;
                        }
                        if b > 90.0 {
                            b -= 360.0;
                        }
                        if theta < a.max(b) {
                            return None;
                        }
                    }
                }
                Some((r * sp, -r * cp / cosd(*gamma)))
            }
            Projection::Szp { mu, xp, yp, zp } => {
                let s = 1.0 - sind(theta);
                let t = zp - s;
                if t == 0.0 {
                    return None;
                }
                let w8 = if (zp - 1.0).abs() < 1.0 {
                    asind(1.0 - zp)
                } else {
                    -90.0
                };
                if theta < w8 {
                    return None;
                }
                if mu.abs() > 1.0 {
                    let w7 = (zp - 1.0) * zp - 1.0;
                    let ss = xp * sp - yp * cp;
                    let tt = 1.0 / (w7 + ss * ss).sqrt();
                    if tt.abs() <= 1.0 {
                        let ss = atan2d(ss, zp - 1.0);
                        let tt = asind(tt);
                        let mut a = ss - tt;
                        let mut b = ss + tt + 180.0;
                        if a > 90.0 {
                            a -= 360.0;
                        }
                        if b > 90.0 {
                            b -= 360.0;
                        }
                        if theta < a.max(b) {
                            return None;
                        }
                    }
                }
                let r = R0 * zp * cosd(theta) / t;
                let u = R0 * xp * s / t;
                let v = R0 * yp * s / t;
                Some((r * sp - u, -r * cp - v))
            }
            Projection::Tan => {
                let s = sind(theta);
                if s <= 0.0 {
                    return None;
                }
                Some(zen(R0 * cosd(theta) / s))
            }
            Projection::Stg => {
                let s = 1.0 + sind(theta);
                if s == 0.0 {
                    return None;
                }
                Some(zen(2.0 * R0 * cosd(theta) / s))
            }
            Projection::Sin { xi, eta } => {
                let t = (90.0 - theta.abs()) * D2R;
                let (z, ct) = if t < 1e-5 {
                    (
                        if theta > 0.0 {
                            t * t / 2.0
                        } else {
                            2.0 - t * t / 2.0
                        },
                        t,
                    )
                } else {
                    (1.0 - sind(theta), cosd(theta))
                };
                let r = R0 * ct;
                if *xi == 0.0 && *eta == 0.0 {
                    if theta < 0.0 {
                        return None;
                    }
                    Some(zen(r))
                } else {
                    let limit = -atand(xi * sp - eta * cp);
                    if theta < limit {
                        return None;
                    }
                    let z = z * R0;
                    Some((r * sp + xi * z, -r * cp + eta * z))
                }
            }
            Projection::Arc => Some(zen(90.0 - theta)),
            Projection::Zpn { coeffs, zd_max, .. } => {
                let s = (90.0 - theta) * D2R;
                if s > *zd_max {
                    return None;
                }
                let r = coeffs.iter().rev().fold(0.0, |acc, c| acc * s + c) * R0;
                Some(zen(r))
            }
            Projection::Zea => Some(zen(2.0 * R0 * sind((90.0 - theta) / 2.0))),
            Projection::Air { cxi } => {
                let r = if theta == 90.0 {
                    0.0
                } else if theta > -90.0 {
                    let xi = D2R * (90.0 - theta) / 2.0;
                    if xi < 1e-4 {
                        xi * 2.0 * R0 * (0.5 - cxi)
                    } else {
                        let c = cosd((90.0 - theta) / 2.0);
                        let t = (1.0 - c * c).sqrt() / c;
                        -2.0 * R0 * (c.ln() / t + cxi * t)
                    }
                } else {
                    return None;
                };
                Some(zen(r))
            }
            Projection::Cyp { mu, lambda } => {
                let eta = mu + cosd(theta);
                if eta == 0.0 {
                    return None;
                }
                Some((lambda * phi, R0 * (mu + lambda) * sind(theta) / eta))
            }
            Projection::Cea { lambda } => Some((phi, R0 * sind(theta) / lambda)),
            Projection::Car => Some((phi, theta)),
            Projection::Mer => {
                if theta <= -90.0 || theta >= 90.0 {
                    return None;
                }
                Some((phi, R0 * tand((theta + 90.0) / 2.0).ln()))
            }
            Projection::Sfl => Some((phi * cosd(theta), theta)),
            Projection::Par => {
                let s = sind(theta / 3.0);
                Some((phi * (1.0 - 4.0 * s * s), std::f64::consts::PI * R0 * s))
            }
            Projection::Mol => {
                let w0 = std::f64::consts::SQRT_2 * R0;
                let (xi, eta) = if theta.abs() == 90.0 {
                    (0.0, w0.copysign(theta))
                } else if theta == 0.0 {
                    (1.0, 0.0)
                } else {
                    let u = std::f64::consts::PI * sind(theta);
                    let (mut v0, mut v1, mut v) = (-std::f64::consts::PI, std::f64::consts::PI, u);
                    for _ in 0..100 {
                        let resid = (v - u) + v.sin();
                        if resid < 0.0 {
                            if resid > -1e-13 {
                                break;
                            }
                            v0 = v;
                        } else {
                            if resid < 1e-13 {
                                break;
                            }
                            v1 = v;
                        }
                        v = (v0 + v1) / 2.0;
                    }
                    let gamma = v / 2.0;
                    (gamma.cos(), w0 * gamma.sin())
                };
                Some((w0 / 90.0 * phi * xi, eta))
            }
            Projection::Ait => {
                let (st, ct) = (sind(theta), cosd(theta));
                let (sh, ch) = (sind(phi / 2.0), cosd(phi / 2.0));
                let w = (2.0 * R0 * R0 / (1.0 + ct * ch)).sqrt();
                Some((2.0 * w * ct * sh, w * st))
            }
            Projection::Cop {
                sigma, c, y0, rcos, ..
            } => {
                let t = theta - sigma;
                let s = cosd(t);
                if s == 0.0 {
                    return None;
                }
                let r = if theta.abs() == 90.0 {
                    if (theta < 0.0) != (*sigma < 0.0) {
                        return None;
                    }
                    0.0
                } else {
                    let r = y0 - rcos * sind(t) / s;
                    if r * c < 0.0 {
                        return None;
                    }
                    r
                };
                Some(conic_xy(r, c * phi, *y0))
            }
            Projection::Coe {
                c,
                y0,
                chi,
                psi,
                r_south,
                ..
            } => {
                let r = if theta == -90.0 {
                    *r_south
                } else {
                    chi * (psi - 2.0 * c * sind(theta)).sqrt()
                };
                Some(conic_xy(r, c * phi, *y0))
            }
            Projection::Cod { sigma, c, y0 } => Some(conic_xy(y0 + sigma - theta, c * phi, *y0)),
            Projection::Coo { c, y0, psi, .. } => {
                let r = if theta == -90.0 {
                    if *c >= 0.0 {
                        return None;
                    }
                    0.0
                } else {
                    psi * tand((90.0 - theta) / 2.0).powf(*c)
                };
                Some(conic_xy(r, c * phi, *y0))
            }
            Projection::Bon { y0, .. } => {
                let r = y0 - theta;
                let alpha = R0 * phi * cosd(theta) / r;
                let (sa, ca) = (sind(alpha), cosd(alpha));
                Some((r * sa, -r * ca + y0))
            }
            Projection::Pco => Some(if theta == 0.0 {
                (phi, 0.0)
            } else if theta.abs() < 1e-4 {
                let x = phi * cosd(theta);
                (x, (1.0 + D2R / (2.0 * R0) * x * x) * theta)
            } else {
                let (st, ct) = (sind(theta), cosd(theta));
                let (spsi, cpsi) = (sind(phi * st), cosd(phi * st));
                let cot = ct / st;
                (R0 * cot * spsi, R0 * (cot * (1.0 - cpsi) + theta * D2R))
            }),
            Projection::Tsc | Projection::Csc | Projection::Qsc => {
                let (st, ct) = (sind(theta), cosd(theta));
                let (l, m, n) = (ct * cp, ct * sp, st);
                if let Projection::Qsc = self
                    && theta.abs() == 90.0
                {
                    return Some((0.0, 90f64.copysign(theta)));
                }
                let (face, zeta) = cube_select(l, m, n);
                let (xi, eta, x0, y0) = match face {
                    1 => (m, n, 0.0, 0.0),
                    2 => (-l, n, 2.0, 0.0),
                    3 => (-m, n, 4.0, 0.0),
                    4 => (l, n, 6.0, 0.0),
                    5 => (m, l, 0.0, -2.0),
                    _ => (m, -l, 0.0, 2.0),
                };
                let (xf, yf) = match self {
                    Projection::Tsc => (xi / zeta, eta / zeta),
                    Projection::Csc => csc_forward(xi, eta, zeta),
                    _ => qsc_forward(face, xi, eta, zeta, phi, theta),
                };
                let tol = if matches!(self, Projection::Csc) {
                    1e-7
                } else {
                    1e-12
                };
                let clampf = |v: f64| -> Option<f64> {
                    if v.abs() > 1.0 {
                        if v.abs() > 1.0 + tol {
                            return None;
                        }
                        return Some(1f64.copysign(v));
                    }
                    Some(v)
                };
                let (xf, yf) = (clampf(xf)?, clampf(yf)?);
                Some((45.0 * (xf + x0), 45.0 * (yf + y0)))
            }
            Projection::Hpx { h, k } => Some(hpx_s2x(*h, *k, phi, theta)),
        }
    }
}

/// The root of a·s² + 2b·s + c = 0 (s = sin θ) nearest the pole, as WCSLIB picks it.
fn pick_sin_root(a: f64, b: f64, c: f64) -> Option<f64> {
    let tol = 1e-13;
    let d = b * b - a * c;
    if d < 0.0 {
        return None;
    }
    let d = d.sqrt();
    let s1 = (-b + d) / a;
    let s2 = (-b - d) / a;
    let mut s = s1.max(s2);
    if s > 1.0 {
        if s - 1.0 < tol {
            s = 1.0;
        } else {
            s = s1.min(s2);
        }
    }
    if s < -1.0 && s + 1.0 > -tol {
        s = -1.0;
    }
    if !(-1.0..=1.0).contains(&s) {
        return None;
    }
    Some(s)
}

/// Polar coordinates (R signed by the sign of θ_a, and α in degrees) about the conic apex.
fn conic_polar(x: f64, y: f64, y0: f64, sigma: f64) -> (f64, f64) {
    let dy = y0 - y;
    let mut r = (x * x + dy * dy).sqrt();
    if sigma < 0.0 {
        r = -r;
    }
    let alpha = if r == 0.0 { 0.0 } else { atan2d(x / r, dy / r) };
    (r, alpha)
}

fn conic_xy(r: f64, alpha: f64, y0: f64) -> (f64, f64) {
    (r * sind(alpha), -r * cosd(alpha) + y0)
}

fn conic(code: &str, sigma: f64, delta: f64) -> Result<Projection, ParamError> {
    let bad = |w: &str| Err(format!("{code}: {w}"));
    Ok(match code {
        "COP" => {
            let c = sind(sigma);
            let rcos = R0 * cosd(delta);
            if c == 0.0 || rcos == 0.0 {
                return bad("invalid PV2_1/PV2_2");
            }
            let cot = 1.0 / tand(sigma);
            Projection::Cop {
                sigma,
                c,
                y0: rcos * cot,
                rcos,
                cot,
            }
        }
        "COE" => {
            let (t1, t2) = (sigma - delta, sigma + delta);
            let c = (sind(t1) + sind(t2)) / 2.0;
            if c == 0.0 {
                return bad("invalid PV2_1/PV2_2");
            }
            let chi = R0 / c;
            let psi = 1.0 + sind(t1) * sind(t2);
            Projection::Coe {
                sigma,
                c,
                y0: chi * (psi - 2.0 * c * sind(sigma)).sqrt(),
                chi,
                psi,
                r_south: chi * (psi + 2.0 * c).sqrt(),
            }
        }
        "COD" => {
            // The cone constant C = sin σ sin δ / δ (δ in radians), sin σ for δ = 0.
            let c = if delta == 0.0 {
                sind(sigma)
            } else {
                sind(sigma) * sind(delta) / (delta * D2R)
            };
            if c == 0.0 {
                return bad("invalid PV2_1/PV2_2");
            }
            Projection::Cod {
                sigma,
                c,
                y0: R0 * cosd(delta) * cosd(sigma) / c,
            }
        }
        _ => {
            let (t1, t2) = (sigma - delta, sigma + delta);
            let tan1 = tand((90.0 - t1) / 2.0);
            let cos1 = cosd(t1);
            let c = if t1 == t2 {
                sind(t1)
            } else {
                let tan2 = tand((90.0 - t2) / 2.0);
                let cos2 = cosd(t2);
                (cos2 / cos1).ln() / (tan2 / tan1).ln()
            };
            if c == 0.0 {
                return bad("invalid PV2_1/PV2_2");
            }
            let psi = R0 * (cos1 / c) / tan1.powf(c);
            if psi == 0.0 {
                return bad("invalid PV2_1/PV2_2");
            }
            Projection::Coo {
                sigma,
                c,
                y0: psi * tand((90.0 - sigma) / 2.0).powf(c),
                psi,
            }
        }
    })
}

/// ZPN: colatitude (radians) where the polynomial stops increasing, and its value there.
fn zpn_limits(c: &[f64]) -> Result<(f64, f64), ParamError> {
    let k = c.len() - 1;
    let deriv = |z: f64| (1..=k).rev().fold(0.0, |acc, m| acc * z + m as f64 * c[m]);
    let poly = |z: f64| c.iter().rev().fold(0.0, |acc, v| acc * z + v);
    if k < 2 {
        return Ok((std::f64::consts::PI, poly(std::f64::consts::PI)));
    }
    if c[1] <= 0.0 {
        return Err("ZPN: PV2_1 must be positive".into());
    }
    let (mut zd1, mut d1) = (0.0, c[1]);
    let mut found = None;
    for j in 0..180 {
        let zd2 = j as f64 * D2R;
        let d2 = deriv(zd2);
        if d2 <= 0.0 {
            found = Some((zd2, d2));
            break;
        }
        zd1 = zd2;
        d1 = d2;
    }
    let zd = match found {
        None => std::f64::consts::PI,
        Some((mut zd2, mut d2)) => {
            let mut zd = zd1;
            for _ in 0..10 {
                zd = zd1 - d1 * (zd2 - zd1) / (d2 - d1);
                let d = deriv(zd);
                if d.abs() < 1e-13 {
                    break;
                }
                if d < 0.0 {
                    zd2 = zd;
                    d2 = d;
                } else {
                    zd1 = zd;
                    d1 = d;
                }
            }
            zd
        }
    };
    Ok((zd, poly(zd)))
}

/// ZPN: colatitude (radians) whose polynomial value is `r` (radians).
fn zpn_invert(c: &[f64], zd_max: f64, r_max: f64, r: f64) -> Option<f64> {
    let tol = 1e-13;
    let k = c.len() - 1;
    let poly = |z: f64| c.iter().rev().fold(0.0, |acc, v| acc * z + v);
    let zd = if k == 1 {
        (r - c[0]) / c[1]
    } else if k == 2 {
        let (a, b, cc) = (c[2], c[1], c[0] - r);
        let d = b * b - 4.0 * a * cc;
        if d < 0.0 {
            return None;
        }
        let d = d.sqrt();
        let z1 = (-b + d) / (2.0 * a);
        let z2 = (-b - d) / (2.0 * a);
        let mut z = z1.min(z2);
        if z < -tol {
            z = z1.max(z2);
        }
        if z < 0.0 {
            if z < -tol {
                return None;
            }
            z = 0.0;
        } else if z > std::f64::consts::PI {
            if z > std::f64::consts::PI + tol {
                return None;
            }
            z = std::f64::consts::PI;
        }
        z
    } else {
        let (mut zd1, mut r1, mut zd2, mut r2) = (0.0, c[0], zd_max, r_max);
        if r < r1 {
            if r < r1 - tol {
                return None;
            }
            zd1
        } else if r > r2 {
            if r > r2 + tol {
                return None;
            }
            zd2
        } else {
            let mut zd = zd1;
            for _ in 0..100 {
                let lambda = ((r2 - r) / (r2 - r1)).clamp(0.1, 0.9);
                zd = zd2 - lambda * (zd2 - zd1);
                let rt = poly(zd);
                if rt < r {
                    if r - rt < tol {
                        break;
                    }
                    r1 = rt;
                    zd1 = zd;
                } else {
                    if rt - r < tol {
                        break;
                    }
                    r2 = rt;
                    zd2 = zd;
                }
                if (zd2 - zd1).abs() < tol {
                    break;
                }
            }
            zd
        }
    };
    Some(zd)
}

/// AIR: ξ (degrees) for the scaled radius r = R / (2 r0), by bracketing on cos ξ.
fn air_invert(cxi: f64, r: f64) -> Option<f64> {
    let tol = 1e-12;
    let f = |cosxi: f64| {
        let tanxi = (1.0 - cosxi * cosxi).sqrt() / cosxi;
        -(cosxi.ln() / tanxi + cxi * tanxi)
    };
    let (mut x1, mut x2, mut r1, mut r2) = (1.0f64, 1.0f64, 0.0f64, 0.0f64);
    let mut found = false;
    for _ in 0..30 {
        x2 = x1 / 2.0;
        r2 = f(x2);
        if r2 >= r {
            found = true;
            break;
        }
        x1 = x2;
        r1 = r2;
    }
    if !found {
        return None;
    }
    let mut cosxi = x2;
    let mut converged = false;
    for _ in 0..100 {
        let lambda = ((r2 - r) / (r2 - r1)).clamp(0.1, 0.9);
        cosxi = x2 - lambda * (x2 - x1);
        let rt = f(cosxi);
        if rt < r {
            if r - rt < tol {
                converged = true;
                break;
            }
            r1 = rt;
            x1 = cosxi;
        } else {
            if rt - r < tol {
                converged = true;
                break;
            }
            r2 = rt;
            x2 = cosxi;
        }
    }
    if !converged {
        return None;
    }
    Some(acosd(cosxi))
}

fn pco_x2s(x: f64, y: f64) -> (f64, f64) {
    let tol = 1e-12;
    let wdeg = y.abs();
    if wdeg < tol {
        return (x, 0.0);
    }
    if (wdeg - 90.0).abs() < tol {
        return (0.0, 90f64.copysign(y));
    }
    let w2 = 2.0 * R0;
    let w3 = D2R / w2;
    let (the, ymthe, tanthe) = if wdeg < 1e-4 {
        let the = y / (1.0 + w3 * x * x);
        (the, y - the, tand(the))
    } else {
        let (mut thepos, mut theneg) = (y, 0.0);
        let xx = x * x;
        let (mut fpos, mut fneg) = (xx, -xx);
        let mut the = thepos;
        let (mut ymthe, mut tanthe) = (0.0, 0.0);
        for _ in 0..64 {
            let lambda = (fpos / (fpos - fneg)).clamp(0.1, 0.9);
            the = thepos - lambda * (thepos - theneg);
            ymthe = y - the;
            tanthe = tand(the);
            let f = xx + ymthe * (ymthe - w2 / tanthe);
            if f.abs() < tol || (thepos - theneg).abs() < tol {
                break;
            }
            if f > 0.0 {
                thepos = the;
                fpos = f;
            } else {
                theneg = the;
                fneg = f;
            }
        }
        (the, ymthe, tanthe)
    };
    let x1 = R0 - ymthe * tanthe;
    let y1 = x * tanthe;
    let phi = if x1 == 0.0 && y1 == 0.0 {
        0.0
    } else {
        atan2d(y1, x1) / sind(the)
    };
    (phi, the)
}

/// Quad-cube: the face of a point in face units (x, y scaled by 45°), and its offsets
/// within the face; `None` outside the cube's net.
fn cube_face(mut xf: f64, mut yf: f64) -> Option<(u8, f64, f64)> {
    if xf.abs() <= 1.0 {
        if yf.abs() > 3.0 {
            return None;
        }
    } else if xf.abs() > 7.0 || yf.abs() > 1.0 {
        return None;
    }
    if xf < -1.0 {
        xf += 8.0;
    }
    let face = if xf > 5.0 {
        xf -= 6.0;
        4
    } else if xf > 3.0 {
        xf -= 4.0;
        3
    } else if xf > 1.0 {
        xf -= 2.0;
        2
    } else if yf > 1.0 {
        yf -= 2.0;
        0
    } else if yf < -1.0 {
        yf += 2.0;
        5
    } else {
        1
    };
    Some((face, xf, yf))
}

/// The face a direction falls on, and ζ (its largest direction cosine).
fn cube_select(l: f64, m: f64, n: f64) -> (u8, f64) {
    let (mut face, mut zeta) = (0u8, n);
    for (f, v) in [(1u8, l), (2, m), (3, -l), (4, -m), (5, -n)] {
        if v > zeta {
            face = f;
            zeta = v;
        }
    }
    (face, zeta)
}

fn tsc_lmn(face: u8, xf: f64, yf: f64) -> (f64, f64, f64) {
    let s = 1.0 / (1.0 + xf * xf + yf * yf).sqrt();
    match face {
        4 => {
            let m = -s;
            (-m * xf, m, -m * yf)
        }
        3 => {
            let l = -s;
            (l, l * xf, -l * yf)
        }
        2 => {
            let m = s;
            (-m * xf, m, m * yf)
        }
        0 => {
            let n = s;
            (-n * yf, n * xf, n)
        }
        5 => {
            let n = -s;
            (-n * yf, -n * xf, n)
        }
        _ => (s, s * xf, s * yf),
    }
}

/// COBE CSC deprojection polynomial (Chan & O'Neill 1975, as WCSLIB evaluates it, in single
/// precision).
#[allow(clippy::excessive_precision)]
fn csc_lmn(face: u8, xf: f32, yf: f32) -> (f64, f64, f64) {
    const P: [[f32; 7]; 7] = [
        [
            -0.27292696,
            -0.07629969,
            -0.22797056,
            0.54852384,
            -0.62930065,
            0.25795794,
            0.02584375,
        ],
        [
            -0.02819452,
            -0.01471565,
            0.48051509,
            -1.74114454,
            1.71547508,
            -0.53022337,
            0.0,
        ],
        [
            0.27058160,
            -0.56800938,
            0.30803317,
            0.98938102,
            -0.83180469,
            0.0,
            0.0,
        ],
        [
            -0.60441560,
            1.50880086,
            -0.93678576,
            0.08693841,
            0.0,
            0.0,
            0.0,
        ],
        [0.93412077, -1.41601920, 0.33887446, 0.0, 0.0, 0.0, 0.0],
        [-0.63915306, 0.52032238, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.14381585, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ];
    // P[j][i] is p_ij (i: power of the first variable's square, j: of the second's).
    let eval = |a: f32, b: f32| -> f32 {
        let (aa, bb) = (a * a, b * b);
        let z: Vec<f32> = (0..7)
            .map(|j| {
                let n = 7 - j;
                (0..n).rev().fold(0.0f32, |acc, i| acc * aa + P[j][i])
            })
            .collect();
        let s = (0..7).rev().fold(0.0f32, |acc, j| acc * bb + z[j]);
        a + a * (1.0 - aa) * s
    };
    let chi = eval(xf, yf);
    let psi = eval(yf, xf);
    let t = 1.0 / ((chi * chi + psi * psi) as f64 + 1.0).sqrt();
    let (chi, psi) = (chi as f64, psi as f64);
    match face {
        1 => (t, chi * t, psi * t),
        2 => (-chi * t, t, psi * t),
        3 => {
            let l = -t;
            (l, chi * l, -psi * l)
        }
        4 => {
            let m = -t;
            (-chi * m, m, -psi * m)
        }
        5 => {
            let n = -t;
            (-psi * n, -chi * n, n)
        }
        _ => (-psi * t, chi * t, t),
    }
}

/// COBE CSC forward polynomial, in single precision as WCSLIB (the published constants,
/// rounded to `f32` as the reference implementation does).
#[allow(clippy::excessive_precision)]
fn csc_forward(xi: f64, eta: f64, zeta: f64) -> (f64, f64) {
    const GSTAR: f32 = 1.37484847732;
    const MM: f32 = 0.004869491981;
    const GAMMA: f32 = -0.13161671474;
    const OMEGA1: f32 = -0.159596235474;
    const D0: f32 = 0.0759196200467;
    const D1: f32 = -0.0217762490699;
    const C00: f32 = 0.141189631152;
    const C10: f32 = 0.0809701286525;
    const C01: f32 = -0.281528535557;
    const C11: f32 = 0.15384112876;
    const C20: f32 = -0.178251207466;
    const C02: f32 = 0.106959469314;
    let chi = (xi / zeta) as f32;
    let psi = (eta / zeta) as f32;
    let (chi2, psi2) = (chi * chi, psi * psi);
    let (chi2co, psi2co) = (1.0 - chi2, 1.0 - psi2);
    let chipsi = (chi * psi).abs();
    let chi4 = if chi2 > 1e-16 { chi2 * chi2 } else { 0.0 };
    let psi4 = if psi2 > 1e-16 { psi2 * psi2 } else { 0.0 };
    let chi2psi2 = if chipsi > 1e-16 { chi2 * psi2 } else { 0.0 };
    let xf = chi
        * (chi2
            + chi2co
                * (GSTAR
                    + psi2
                        * (GAMMA * chi2co
                            + MM * chi2
                            + psi2co
                                * (C00
                                    + C10 * chi2
                                    + C01 * psi2
                                    + C11 * chi2psi2
                                    + C20 * chi4
                                    + C02 * psi4))
                    + chi2 * (OMEGA1 - chi2co * (D0 + D1 * chi2))));
    let yf = psi
        * (psi2
            + psi2co
                * (GSTAR
                    + chi2
                        * (GAMMA * psi2co
                            + MM * psi2
                            + chi2co
                                * (C00
                                    + C10 * psi2
                                    + C01 * chi2
                                    + C11 * chi2psi2
                                    + C20 * psi4
                                    + C02 * chi4))
                    + psi2 * (OMEGA1 - psi2co * (D0 + D1 * psi2))));
    (xf as f64, yf as f64)
}

fn qsc_lmn(face: u8, xf: f64, yf: f64) -> Option<(f64, f64, f64)> {
    let tol = 1e-12;
    let sqrt2inv = std::f64::consts::FRAC_1_SQRT_2;
    let direct = xf.abs() > yf.abs();
    let (a, b) = if direct { (xf, yf) } else { (yf, xf) };
    let (omega, tau, mut zeco, mut zeta) = if a == 0.0 {
        (0.0, 1.0, 0.0, 1.0)
    } else {
        let w = 15.0 * b / a;
        let omega = sind(w) / (cosd(w) - sqrt2inv);
        let tau = 1.0 + omega * omega;
        let zeco = a * a * (1.0 - 1.0 / (1.0 + tau).sqrt());
        (omega, tau, zeco, 1.0 - zeco)
    };
    let w = if zeta < -1.0 {
        if zeta < -1.0 - tol {
            return None;
        }
        zeta = -1.0;
        zeco = 2.0;
        0.0
    } else {
        (zeco * (2.0 - zeco) / tau).sqrt()
    };
    let _ = zeco;
    let sgn = |v: f64, neg: bool| if neg { -v } else { v };
    Some(match face {
        1 => {
            if direct {
                let m = sgn(w, xf < 0.0);
                (zeta, m, m * omega)
            } else {
                let n = sgn(w, yf < 0.0);
                (zeta, n * omega, n)
            }
        }
        2 => {
            if direct {
                let l = sgn(w, xf > 0.0);
                (l, zeta, -l * omega)
            } else {
                let n = sgn(w, yf < 0.0);
                (-n * omega, zeta, n)
            }
        }
        3 => {
            if direct {
                let m = sgn(w, xf > 0.0);
                (-zeta, m, -m * omega)
            } else {
                let n = sgn(w, yf < 0.0);
                (-zeta, -n * omega, n)
            }
        }
        4 => {
            if direct {
                let l = sgn(w, xf < 0.0);
                (l, -zeta, l * omega)
            } else {
                let n = sgn(w, yf < 0.0);
                (n * omega, -zeta, n)
            }
        }
        5 => {
            if direct {
                let m = sgn(w, xf < 0.0);
                (m * omega, m, -zeta)
            } else {
                let l = sgn(w, yf < 0.0);
                (l, l * omega, -zeta)
            }
        }
        _ => {
            if direct {
                let m = sgn(w, xf < 0.0);
                (-m * omega, m, zeta)
            } else {
                let l = sgn(w, yf > 0.0);
                (l, -l * omega, zeta)
            }
        }
    })
}

fn qsc_forward(face: u8, xi: f64, eta: f64, zeta: f64, phi: f64, theta: f64) -> (f64, f64) {
    let mut zeco = 1.0 - zeta;
    if zeco < 1e-8 {
        let t = theta * D2R;
        let (sp, cp) = (sind(phi), cosd(phi));
        let p = sp.atan2(cp);
        zeco = match face {
            1 => (p * p + t * t) / 2.0,
            2 => {
                let p = p - std::f64::consts::FRAC_PI_2;
                (p * p + t * t) / 2.0
            }
            3 => {
                let p = p - std::f64::consts::PI.copysign(p);
                (p * p + t * t) / 2.0
            }
            4 => {
                let p = p + std::f64::consts::FRAC_PI_2;
                (p * p + t * t) / 2.0
            }
            5 => {
                let t = (theta + 90.0) * D2R;
                t * t / 2.0
            }
            _ => {
                let t = (90.0 - theta) * D2R;
                t * t / 2.0
            }
        };
    }
    let (mut xf, mut yf) = (0.0, 0.0);
    if xi != 0.0 || eta != 0.0 {
        let branch = |a: f64, b: f64| {
            let omega = b / a;
            let tau = 1.0 + omega * omega;
            let s = (zeco / (1.0 - 1.0 / (1.0 + tau).sqrt())).sqrt();
            (s, omega, tau)
        };
        if -xi > eta.abs() {
            let (s, omega, tau) = branch(xi, eta);
            xf = -s;
            yf = (xf / 15.0) * (atand(omega) - asind(omega / (tau + tau).sqrt()));
        } else if xi > eta.abs() {
            let (s, omega, tau) = branch(xi, eta);
            xf = s;
            yf = (xf / 15.0) * (atand(omega) - asind(omega / (tau + tau).sqrt()));
        } else if -eta >= xi.abs() {
            let (s, omega, tau) = branch(eta, xi);
            yf = -s;
            xf = (yf / 15.0) * (atand(omega) - asind(omega / (tau + tau).sqrt()));
        } else if eta >= xi.abs() {
            let (s, omega, tau) = branch(eta, xi);
            yf = s;
            xf = (yf / 15.0) * (atand(omega) - asind(omega / (tau + tau).sqrt()));
        }
    }
    (xf, yf)
}

fn hpx_x2s(h: f64, k: f64, x: f64, y: f64) -> Option<(f64, f64)> {
    let m = ((h + 0.5) as i64) % 2;
    let n_odd = ((k + 0.5) as i64) % 2 == 1;
    let w3 = 90.0 * k / h;
    let w4 = (k + 1.0) / 2.0;
    let w5 = 90.0 * (k - 1.0) / h;
    let w6 = 180.0 / h;
    let w7 = h / 360.0;
    let slim = w6 + 1e-12;
    let ylim = w6 * w4;
    let absy = y.abs();
    if absy <= w5 {
        return Some((x, asind(y / w3)));
    }
    if absy > ylim {
        return None;
    }
    let offset = !(n_odd || y > 0.0);
    let sigma = w4 - absy / w6;
    let (s, t) = if sigma == 0.0 {
        (1e9, 90.0)
    } else {
        let t = 1.0 - sigma * sigma / k;
        if t < -1.0 {
            return None;
        }
        (1.0 / sigma, asind(t))
    };
    let t = if y < 0.0 { -t } else { t };
    // x − x_c, where x_c is the centre of the facet column.
    let xc = -180.0 + (2.0 * ((x + 180.0) * w7).floor() + 1.0) * w6;
    let mut dx = x - xc;
    if offset {
        let hh = (x / w6).floor() as i64 + m;
        if hh % 2 != 0 {
            dx -= w6;
        } else {
            dx += w6;
        }
    }
    let mut r = s * dx;
    if slim <= r.abs() {
        return None;
    }
    if r != 0.0 {
        r -= dx;
    }
    Some((x + r, t))
}

fn hpx_s2x(h: f64, k: f64, phi: f64, theta: f64) -> (f64, f64) {
    let m = ((h + 0.5) as i64) % 2;
    let n_odd = ((k + 0.5) as i64) % 2 == 1;
    let w2 = (k - 1.0) / k;
    let w8 = 90.0 * k / h;
    let w9 = 180.0 / h;
    let w7 = h / 360.0;
    let w4 = (k + 1.0) / 2.0;
    let sinthe = sind(theta);
    let abssin = sinthe.abs();
    if abssin <= w2 {
        return (phi, w8 * sinthe);
    }
    let offset = !(n_odd || theta > 0.0);
    let sigma = (k * (1.0 - abssin)).sqrt();
    let xi = sigma - 1.0;
    let mut eta = w9 * (w4 - sigma);
    if theta < 0.0 {
        eta = -eta;
    }
    let phic = -180.0 + (2.0 * ((phi + 180.0) * w7).floor() + 1.0) * w9;
    let mut d = phi - phic;
    if offset {
        let hh = (phi / w9).floor() as i64 + m;
        if hh % 2 != 0 {
            d -= w9;
        } else {
            d += w9;
        }
    }
    let mut x = phi + d * xi;
    if 180.0 < x {
        x = 360.0 - x;
    }
    (x, eta)
}

//! Conic projections — COP, COE, COD, COO (Calabretta & Greisen 2002, §5.4): the constructor resolves σ and δ into the projection constants.

#[allow(unused_imports)]
use super::math::*;
use super::{ParamError, Projection};

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    Some(match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => None,
    }
}

/// Polar coordinates (R signed by the sign of θ_a, and α in degrees) about the conic apex.
pub(super) fn conic_polar(x: f64, y: f64, y0: f64, sigma: f64) -> (f64, f64) {
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

pub(super) fn new(code: &str, sigma: f64, delta: f64) -> Result<Projection, ParamError> {
    let bad = |w: &str| Err(ParamError::Invalid(format!("{code}: {w}")));
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

//! Pseudocylindrical projections — SFL, PAR, MOL, AIT (Calabretta & Greisen 2002, §5.3).

use super::Projection;
#[allow(unused_imports)]
use super::math::*;

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    Some(match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => None,
    }
}

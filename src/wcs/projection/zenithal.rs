//! Zenithal (azimuthal) projections — AZP, SZP, TAN, STG, SIN, ARC, ZPN, ZEA, AIR (Calabretta & Greisen 2002, §5.1; WCSLIB `prj.c`).

#[allow(unused_imports)]
use super::math::*;
use super::{ParamError, Projection};

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    let r = (x * x + y * y).sqrt();
    let phi_z = || if r == 0.0 { 0.0 } else { atan2d(x, -y) };
    Some(match p {
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
                (atan2d(x, -yc), upper_root(s, t))
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
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    let (sp, cp) = (sind(phi), cosd(phi));
    let zen = |r: f64| (r * sp, -r * cp);
    match p {
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
                    if theta < upper_root(ss, tt) {
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
                    if theta < upper_root(ss, tt) {
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
        // Not of this family: the dispatcher never sends one.
        _ => None,
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

/// ZPN: colatitude (radians) where the polynomial stops increasing, and its value there.
pub(super) fn zpn_limits(c: &[f64]) -> Result<(f64, f64), ParamError> {
    let k = c.len() - 1;
    let deriv = |z: f64| (1..=k).rev().fold(0.0, |acc, m| acc * z + m as f64 * c[m]);
    let poly = |z: f64| c.iter().rev().fold(0.0, |acc, v| acc * z + v);
    if k < 2 {
        return Ok((std::f64::consts::PI, poly(std::f64::consts::PI)));
    }
    if c[1] <= 0.0 {
        return Err(ParamError::Invalid("ZPN: PV2_1 must be positive".into()));
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

/// Of the two latitudes `s - t` and `s + t + 180` (degrees, folded into (-270, 90]), the
/// larger: AZP's and SZP's limit of the visible hemisphere (WCSLIB's azpx2s/azps2x, szps2x).
fn upper_root(s: f64, t: f64) -> f64 {
    let fold = |v: f64| if v > 90.0 { v - 360.0 } else { v };
    fold(s - t).max(fold(s + t + 180.0))
}

//! Quadrilateralized spherical cube projections — TSC, CSC, QSC (Calabretta & Greisen 2002, §5.6): the cube face of a point, then the face's own mapping.

use super::Projection;
#[allow(unused_imports)]
use super::math::*;

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    Some(match p {
        Projection::Tsc | Projection::Csc | Projection::Qsc => {
            let (face, xf, yf) = cube_face(x / 45.0, y / 45.0)?;
            let (l, m, n) = match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    let (sp, cp) = (sind(phi), cosd(phi));
    match p {
        Projection::Tsc | Projection::Csc | Projection::Qsc => {
            let (st, ct) = (sind(theta), cosd(theta));
            let (l, m, n) = (ct * cp, ct * sp, st);
            if let Projection::Qsc = p
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
            let (xf, yf) = match p {
                Projection::Tsc => (xi / zeta, eta / zeta),
                Projection::Csc => csc_forward(xi, eta, zeta),
                _ => qsc_forward(face, xi, eta, zeta, phi, theta),
            };
            let tol = if matches!(p, Projection::Csc) {
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
        // Not of this family: the dispatcher never sends one.
        _ => None,
    }
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

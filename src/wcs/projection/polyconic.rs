//! Polyconic and pseudoconic projections — BON, PCO (Calabretta & Greisen 2002, §5.5).

use super::Projection;
use super::conic::conic_polar;
#[allow(unused_imports)]
use super::math::*;

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    Some(match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => None,
    }
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

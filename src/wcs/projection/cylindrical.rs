//! Cylindrical projections — CYP, CEA, CAR, MER (Calabretta & Greisen 2002, §5.2).

use super::Projection;
#[allow(unused_imports)]
use super::math::*;

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    Some(match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    match p {
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
        // Not of this family: the dispatcher never sends one.
        _ => None,
    }
}

//! The HEALPix projection — HPX (Calabretta & Roukema 2007).

use super::Projection;
#[allow(unused_imports)]
use super::math::*;

/// Projection plane (x, y) → native (φ, θ), degrees, before the common bounds check.
pub(super) fn x2s(p: &Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    Some(match p {
        Projection::Hpx { h, k } => hpx_x2s(*h, *k, x, y)?,
        // Not of this family: the dispatcher never sends one.
        _ => return None,
    })
}

/// Native (φ, θ) → projection plane (x, y), degrees.
pub(super) fn s2x(p: &Projection, phi: f64, theta: f64) -> Option<(f64, f64)> {
    match p {
        Projection::Hpx { h, k } => Some(hpx_s2x(*h, *k, phi, theta)),
        // Not of this family: the dispatcher never sends one.
        _ => None,
    }
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

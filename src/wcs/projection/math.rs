//! Degree-based trigonometry and the constants the projections share.

pub(super) const R0: f64 = 180.0 / std::f64::consts::PI;
pub(super) const D2R: f64 = std::f64::consts::PI / 180.0;
pub(super) const TOL: f64 = 1e-13;

#[inline]
pub(super) fn sind(a: f64) -> f64 {
    (a * D2R).sin()
}
#[inline]
pub(super) fn cosd(a: f64) -> f64 {
    (a * D2R).cos()
}
#[inline]
pub(super) fn tand(a: f64) -> f64 {
    (a * D2R).tan()
}
#[inline]
pub(super) fn asind(v: f64) -> f64 {
    v.asin() / D2R
}
#[inline]
pub(super) fn acosd(v: f64) -> f64 {
    v.acos() / D2R
}
#[inline]
pub(super) fn atand(v: f64) -> f64 {
    v.atan() / D2R
}
#[inline]
pub(super) fn atan2d(y: f64, x: f64) -> f64 {
    y.atan2(x) / D2R
}

//! Distortions: SIP (Shupe et al. 2005: A/B forward in pixel space, AP/BP inverse) and TPV
//! (the polynomial convention on intermediate world coordinates used by SCAMP, with the
//! PV1_k / PV2_k coefficients, radial terms included).

use crate::fits::Header;

/// A polynomial in (u, v): Σ c · u^p · v^q.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Poly2 {
    terms: Vec<(i32, i32, f64)>,
}

impl Poly2 {
    fn eval(&self, u: f64, v: f64) -> f64 {
        self.terms
            .iter()
            .map(|&(p, q, c)| c * u.powi(p) * v.powi(q))
            .sum()
    }

    fn from_header(h: &Header, prefix: &str) -> Result<Option<Poly2>, super::WcsError> {
        let key = format!("{prefix}_ORDER");
        let Some(order) = h.i64(&key) else {
            return Ok(None);
        };
        if !(0..=20).contains(&order) {
            return Err(super::WcsError::BadKeyword(format!("{key} = {order}")));
        }
        let order = order as i32;
        let mut terms = Vec::new();
        for p in 0..=order {
            for q in 0..=(order - p) {
                if let Some(c) = h.f64(&format!("{prefix}_{p}_{q}"))
                    && c != 0.0
                {
                    terms.push((p, q, c));
                }
            }
        }
        Ok(Some(Poly2 { terms }))
    }
}

/// SIP distortion in pixel offsets from CRPIX.
#[derive(Debug, Clone, PartialEq)]
pub struct Sip {
    a: Poly2,
    b: Poly2,
    ap: Option<Poly2>,
    bp: Option<Poly2>,
}

impl Sip {
    pub fn from_header(h: &Header) -> Result<Sip, super::WcsError> {
        let a = Poly2::from_header(h, "A")?
            .ok_or_else(|| super::WcsError::BadKeyword("A_ORDER (SIP without it)".into()))?;
        let b = Poly2::from_header(h, "B")?
            .ok_or_else(|| super::WcsError::BadKeyword("B_ORDER (SIP without it)".into()))?;
        Ok(Sip {
            a,
            b,
            ap: Poly2::from_header(h, "AP")?,
            bp: Poly2::from_header(h, "BP")?,
        })
    }

    /// Distorted offsets (u + f(u, v), v + g(u, v)).
    pub fn forward(&self, u: f64, v: f64) -> (f64, f64) {
        (u + self.a.eval(u, v), v + self.b.eval(u, v))
    }

    /// Undistorted offsets for distorted (U, V): AP/BP as the first guess, then Newton on the
    /// forward polynomials (so the result inverts `forward` to 1e-12 pixel).
    pub fn inverse(&self, uu: f64, vv: f64) -> Option<(f64, f64)> {
        let (mut u, mut v) = match (&self.ap, &self.bp) {
            (Some(ap), Some(bp)) => (uu + ap.eval(uu, vv), vv + bp.eval(uu, vv)),
            _ => (uu, vv),
        };
        newton(|u, v| self.forward(u, v), uu, vv, &mut u, &mut v).then_some((u, v))
    }
}

/// TPV distortion of intermediate world coordinates (degrees).
#[derive(Debug, Clone, PartialEq)]
pub struct Tpv {
    c1: [f64; 40],
    c2: [f64; 40],
}

impl Tpv {
    /// `lng` and `lat` are the 1-based axis numbers of the longitude and latitude axes.
    pub fn from_header(h: &Header, lng: usize, lat: usize) -> Tpv {
        let read = |axis: usize| {
            let mut c = [0.0; 40];
            for (k, v) in c.iter_mut().enumerate() {
                if let Some(x) = h.f64(&format!("PV{axis}_{k}")) {
                    *v = x;
                }
            }
            if !(0..40).any(|k| h.contains(&format!("PV{axis}_{k}"))) {
                c[1] = 1.0;
            }
            c
        };
        Tpv {
            c1: read(lng),
            c2: read(lat),
        }
    }

    fn series(c: &[f64; 40], x: f64, y: f64) -> f64 {
        let r = x.hypot(y);
        let mut terms = [0.0f64; 40];
        terms[0] = 1.0;
        terms[1] = x;
        terms[2] = y;
        terms[3] = r;
        let mut k = 4;
        for n in 2..=7 {
            for j in 0..=n {
                terms[k] = x.powi(n - j) * y.powi(j);
                k += 1;
            }
            if n % 2 == 1 {
                terms[k] = r.powi(n);
                k += 1;
            }
        }
        c.iter().zip(terms.iter()).map(|(a, b)| a * b).sum()
    }

    /// (ξ, η) from intermediate (x, y) on the longitude and latitude axes.
    pub fn forward(&self, x: f64, y: f64) -> (f64, f64) {
        (Self::series(&self.c1, x, y), Self::series(&self.c2, y, x))
    }

    pub fn inverse(&self, xi: f64, eta: f64) -> Option<(f64, f64)> {
        let (mut x, mut y) = (xi, eta);
        newton(|x, y| self.forward(x, y), xi, eta, &mut x, &mut y).then_some((x, y))
    }
}

/// Solves f(u, v) = (a, b) by Newton's method with a numerical Jacobian, from (u, v).
fn newton(f: impl Fn(f64, f64) -> (f64, f64), a: f64, b: f64, u: &mut f64, v: &mut f64) -> bool {
    for _ in 0..50 {
        let (fu, fv) = f(*u, *v);
        let (ru, rv) = (fu - a, fv - b);
        let scale = 1.0 + a.abs().max(b.abs());
        if ru.abs() < 1e-13 * scale && rv.abs() < 1e-13 * scale {
            return true;
        }
        let h = 1e-6 * scale;
        let (fu1, fv1) = f(*u + h, *v);
        let (fu2, fv2) = f(*u, *v + h);
        let j = [
            [(fu1 - fu) / h, (fu2 - fu) / h],
            [(fv1 - fv) / h, (fv2 - fv) / h],
        ];
        let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
        if det == 0.0 || !det.is_finite() {
            return false;
        }
        let du = (j[1][1] * ru - j[0][1] * rv) / det;
        let dv = (-j[1][0] * ru + j[0][0] * rv) / det;
        *u -= du;
        *v -= dv;
        if !u.is_finite() || !v.is_finite() {
            return false;
        }
    }
    let (fu, fv) = f(*u, *v);
    (fu - a).abs() < 1e-9 * (1.0 + a.abs()) && (fv - b).abs() < 1e-9 * (1.0 + b.abs())
}

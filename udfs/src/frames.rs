//! Celestial reference frames (those of FITS WCS: RADESYS, EQUINOX; GLON/GLAT; ELON/ELAT) and
//! conversions between them and ICRS, following astropy.coordinates' definitions so that
//! positions agree with astropy to well under a milliarcsecond (checked in tests against
//! astropy). Used by astropipe's WCS (images in any frame → ICRS catalog positions) and by the
//! `galactic_*` / `ecliptic_*` SQL functions.
//!
//! - FK5(equinox): IAU 2006 precession (Capitaine et al. 2003, Fukushima–Williams angles) to
//!   J2000, then the ICRS–FK5 frame bias of USNO circular 179;
//! - FK4(equinox): E-terms of aberration removed, Newcomb precession to B1950, the B1950 →
//!   J2000 matrix of Murray (1989) with the rotating-system correction, then as FK5;
//! - Galactic: the J2000 north galactic pole and longitude zero astropy uses, via FK5 J2000;
//! - Ecliptic: the mean ecliptic and equinox of J2000 (IAU 2006 obliquity).

type M3 = [[f64; 3]; 3];

const D2R: f64 = std::f64::consts::PI / 180.0;
const AS2R: f64 = D2R / 3600.0;

/// A celestial frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frame {
    Icrs,
    /// FK5 with a Julian equinox (years).
    Fk5(f64),
    /// FK4 with a Besselian equinox (years).
    Fk4(f64),
    /// FK4 without E-terms.
    Fk4NoE(f64),
    Galactic,
    /// Mean ecliptic and equinox of J2000.
    Ecliptic,
}

impl Frame {
    pub fn name(&self) -> String {
        match self {
            Frame::Icrs => "ICRS".into(),
            Frame::Fk5(e) => format!("FK5 (J{e})"),
            Frame::Fk4(e) => format!("FK4 (B{e})"),
            Frame::Fk4NoE(e) => format!("FK4-NO-E (B{e})"),
            Frame::Galactic => "Galactic".into(),
            Frame::Ecliptic => "Ecliptic (J2000)".into(),
        }
    }

    /// ICRS (α, δ) of a position given in this frame, degrees.
    pub fn to_icrs(&self, lon: f64, lat: f64) -> (f64, f64) {
        if *self == Frame::Icrs {
            return (lon, lat);
        }
        let v = unit(lon, lat);
        let out = match *self {
            Frame::Icrs => v,
            Frame::Fk5(e) => fk5_to_icrs(v, e),
            Frame::Fk4(e) => fk4noe_to_icrs(remove_eterms(v, e), e),
            Frame::Fk4NoE(e) => fk4noe_to_icrs(v, e),
            Frame::Galactic => icrs_from_fk5_j2000(mul_t(&galactic_to_fk5_t(), v)),
            Frame::Ecliptic => {
                let rb = fw2m(pfw06(0.0));
                let eps0 = obl06(0.0);
                mul_t(&rb, mul_t(&rx(eps0), v))
            }
        };
        spherical(out)
    }
}

impl Frame {
    /// Position in this frame of an ICRS (α, δ), degrees. `None` for the FK4 frames (their
    /// E-terms and rotating-system correction are only implemented towards ICRS).
    pub fn from_icrs(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let v = unit(ra, dec);
        let out = match *self {
            Frame::Icrs => return Some((ra.rem_euclid(360.0), dec)),
            Frame::Fk5(e) => {
                let v2000 = mul(&icrs_to_fk5(), v);
                let t = (e - 2000.0) / 100.0;
                if t == 0.0 {
                    v2000
                } else {
                    mul(&precession_from_j2000(t), v2000)
                }
            }
            Frame::Galactic => mul(&galactic_to_fk5_t(), mul(&icrs_to_fk5(), v)),
            Frame::Ecliptic => {
                let rb = fw2m(pfw06(0.0));
                mul(&rx(obl06(0.0)), mul(&rb, v))
            }
            Frame::Fk4(_) | Frame::Fk4NoE(_) => return None,
        };
        Some(spherical(out))
    }
}

/// Galactic (l, b) of an ICRS (α, δ), degrees.
pub fn icrs_to_galactic(ra: f64, dec: f64) -> (f64, f64) {
    Frame::Galactic
        .from_icrs(ra, dec)
        .unwrap_or((f64::NAN, f64::NAN))
}

/// ICRS (α, δ) of galactic (l, b), degrees.
pub fn galactic_to_icrs(l: f64, b: f64) -> (f64, f64) {
    Frame::Galactic.to_icrs(l, b)
}

/// Ecliptic (λ, β) (mean ecliptic and equinox of J2000, barycentric) of an ICRS (α, δ), degrees.
pub fn icrs_to_ecliptic(ra: f64, dec: f64) -> (f64, f64) {
    Frame::Ecliptic
        .from_icrs(ra, dec)
        .unwrap_or((f64::NAN, f64::NAN))
}

/// ICRS (α, δ) of ecliptic (λ, β), degrees.
pub fn ecliptic_to_icrs(lon: f64, lat: f64) -> (f64, f64) {
    Frame::Ecliptic.to_icrs(lon, lat)
}

fn unit(lon: f64, lat: f64) -> [f64; 3] {
    let (sl, cl) = (lon * D2R).sin_cos();
    let (sb, cb) = (lat * D2R).sin_cos();
    [cb * cl, cb * sl, sb]
}

fn spherical(v: [f64; 3]) -> (f64, f64) {
    let r = (v[0] * v[0] + v[1] * v[1]).sqrt();
    let lon = (v[1].atan2(v[0]) / D2R).rem_euclid(360.0);
    let lat = v[2].atan2(r) / D2R;
    (lon, lat)
}

fn mul(m: &M3, v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

/// Mᵀ v.
fn mul_t(m: &M3, v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[1][0] * v[1] + m[2][0] * v[2],
        m[0][1] * v[0] + m[1][1] * v[1] + m[2][1] * v[2],
        m[0][2] * v[0] + m[1][2] * v[1] + m[2][2] * v[2],
    ]
}

fn matmul(a: &M3, b: &M3) -> M3 {
    let mut r = [[0.0; 3]; 3];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

fn transpose(a: &M3) -> M3 {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = a[j][i];
        }
    }
    r
}

/// Frame rotations (passive, as astropy's `rotation_matrix` and ERFA's eraRx/eraRy/eraRz);
/// angles in radians.
fn rx(a: f64) -> M3 {
    let (s, c) = a.sin_cos();
    [[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]]
}
fn ry(a: f64) -> M3 {
    let (s, c) = a.sin_cos();
    [[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]
}
fn rz(a: f64) -> M3 {
    let (s, c) = a.sin_cos();
    [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]
}

/// ICRS → FK5 J2000 frame bias (USNO circular 179), as astropy.
fn icrs_to_fk5() -> M3 {
    let eta0 = -19.9 * AS2R / 1000.0;
    let xi0 = 9.1 * AS2R / 1000.0;
    let da0 = -22.9 * AS2R / 1000.0;
    matmul(&matmul(&rx(-eta0), &ry(xi0)), &rz(da0))
}

fn icrs_from_fk5_j2000(v: [f64; 3]) -> [f64; 3] {
    mul_t(&icrs_to_fk5(), v)
}

/// IAU 2006 Fukushima–Williams precession angles (γ̄, φ̄, ψ̄, ε_A), radians, at `t` Julian
/// centuries (TT) from J2000.
fn pfw06(t: f64) -> (f64, f64, f64, f64) {
    let gamb = (-0.052928
        + (10.556378
            + (0.4932044 + (-0.00031238 + (-0.000002788 + 0.0000000260 * t) * t) * t) * t)
            * t)
        * AS2R;
    let phib = (84381.412819
        + (-46.811016
            + (0.0511268 + (0.00053289 + (-0.000000440 + -0.0000000176 * t) * t) * t) * t)
            * t)
        * AS2R;
    let psib = (-0.041775
        + (5038.481484
            + (1.5584175 + (-0.00018522 + (-0.000026452 + -0.0000000148 * t) * t) * t) * t)
            * t)
        * AS2R;
    (gamb, phib, psib, obl06(t))
}

/// IAU 2006 mean obliquity, radians.
fn obl06(t: f64) -> f64 {
    (84381.406
        + (-46.836769
            + (-0.0001831 + (0.00200340 + (-0.000000576 + -0.0000000434 * t) * t) * t) * t)
            * t)
        * AS2R
}

/// The rotation matrix of Fukushima–Williams angles (ERFA eraFw2m).
fn fw2m((gamb, phib, psi, eps): (f64, f64, f64, f64)) -> M3 {
    matmul(&matmul(&matmul(&rx(-eps), &rz(-psi)), &rx(phib)), &rz(gamb))
}

/// Precession matrix (without frame bias) from J2000 to the epoch `t` centuries (ERFA eraBp06's
/// `rp`).
fn precession_from_j2000(t: f64) -> M3 {
    let rb = fw2m(pfw06(0.0));
    let rbp = fw2m(pfw06(t));
    matmul(&rbp, &transpose(&rb))
}

fn fk5_to_icrs(v: [f64; 3], equinox: f64) -> [f64; 3] {
    let t = (equinox - 2000.0) / 100.0;
    let v2000 = if t == 0.0 {
        v
    } else {
        mul_t(&precession_from_j2000(t), v)
    };
    icrs_from_fk5_j2000(v2000)
}

/// Julian date of a Besselian epoch.
fn jd_of_besselian(b: f64) -> f64 {
    2415020.31352 + (b - 1900.0) * 365.242198781
}

/// The E-terms of aberration vector for an FK4 equinox (astropy `fk4_e_terms`).
fn eterms(equinox: f64) -> [f64; 3] {
    let jd = jd_of_besselian(equinox);
    let t = (jd - jd_of_besselian(1950.0)) / 36525.0;
    let k = 0.0056932 * D2R;
    let ek = k * ((-0.000000126 * t - 0.00004193) * t + 0.01673011);
    let g = ((((0.012 * t + 1.65) * t + 6190.67) * t + 1015489.951) / 3600.0) * D2R;
    let t80 = (jd - 2451545.0) / 36525.0;
    let o = (84381.448 + (-46.8150 + (-0.00059 + 0.001813 * t80) * t80) * t80) * AS2R;
    let m = -ek * g.cos();
    [ek * g.sin(), m * o.cos(), m * o.sin()]
}

fn remove_eterms(v: [f64; 3], equinox: f64) -> [f64; 3] {
    let a = eterms(equinox);
    let dot = a[0] * v[0] + a[1] * v[1] + a[2] * v[2];
    let r = [
        v[0] - a[0] + dot * v[0],
        v[1] - a[1] + dot * v[1],
        v[2] - a[2] + dot * v[2],
    ];
    let n = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
    [r[0] / n, r[1] / n, r[2] / n]
}

/// Newcomb precession between Besselian equinoxes (astropy FK4 `_precession_matrix`).
fn newcomb(old: f64, new: f64) -> M3 {
    let t1 = (old - 1850.0) / 1000.0;
    let dt = (new - 1850.0) / 1000.0 - t1;
    let d3600 = dt / 3600.0;
    let zeta1 = (0.060 * t1 + 139.720) * t1 + 23035.545;
    let zeta2 = -0.27 * t1 + 30.240;
    let zeta = ((17.995 * dt + zeta2) * dt + zeta1) * d3600;
    let z2 = 109.480 + 0.39 * t1;
    let z = ((18.325 * dt + z2) * dt + zeta1) * d3600;
    let theta1 = (-0.37 * t1 - 85.29) * t1 + 20051.12;
    let theta2 = -0.37 * t1 - 42.65;
    let theta = ((-41.8 * dt + theta2) * dt + theta1) * d3600;
    matmul(&matmul(&rz(-z * D2R), &ry(theta * D2R)), &rz(-zeta * D2R))
}

fn fk4noe_to_icrs(v: [f64; 3], equinox: f64) -> [f64; 3] {
    let v1950 = if equinox == 1950.0 {
        v
    } else {
        mul(&newcomb(equinox, 1950.0), v)
    };
    // Murray (1989) eq. 28, with the correction for FK4 being a rotating system (eq. 29),
    // for an observation epoch equal to the equinox (astropy's default).
    const M: M3 = [
        [0.9999256794956877, -0.0111814832204662, -0.0048590038153592],
        [0.0111814832391717, 0.9999374848933135, -0.0000271625947142],
        [0.0048590037723143, -0.0000271702937440, 0.9999881946023742],
    ];
    const CORR: M3 = [
        [-0.0026455262, -1.1539918689, 2.1111346190],
        [1.1540628161, -0.0129042997, 0.0236021478],
        [-2.1112979048, -0.0056024448, 0.0102587734],
    ];
    let jyear = 2000.0 + (jd_of_besselian(equinox) - 2451545.0) / 365.25;
    let t = (jyear - 1950.0) / 100.0;
    let mut b = M;
    for i in 0..3 {
        for j in 0..3 {
            b[i][j] += CORR[i][j] * 1e-6 * t;
        }
    }
    icrs_from_fk5_j2000(mul(&b, v1950))
}

/// FK5 J2000 → galactic matrix (astropy's NGP and longitude zero); returned so that
/// `mul_t` applies galactic → FK5.
fn galactic_to_fk5_t() -> M3 {
    let ra_ngp = 192.8594812065348;
    let dec_ngp = 27.12825118085622;
    let lon0 = 122.9319185680026;
    matmul(
        &matmul(&rz((180.0 - lon0) * D2R), &ry((90.0 - dec_ngp) * D2R)),
        &rz(ra_ngp * D2R),
    )
}

//! Spherical geometry shared by the UDF families (plain `f64` maths, degrees at the edges).

/// Great-circle distance in degrees between (ra1, dec1) and (ra2, dec2), all in degrees.
///
/// Uses the Vincenty formula (atan2 of the cross and dot products), which is accurate to
/// machine precision at every separation, unlike the haversine (poor near 180°) or the law of
/// cosines (poor near 0°).
#[inline]
pub fn ang_sep_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (s1, c1) = dec1.to_radians().sin_cos();
    let (s2, c2) = dec2.to_radians().sin_cos();
    let (sd, cd) = (ra2 - ra1).to_radians().sin_cos();
    let num1 = c2 * sd;
    let num2 = c1 * s2 - s1 * c2 * cd;
    let den = s1 * s2 + c1 * c2 * cd;
    num1.hypot(num2).atan2(den).to_degrees()
}

/// A cone (centre and radius in degrees) prepared for many containment tests: the test is a
/// dot product of unit vectors against cos(radius), with no trigonometry per point beyond the
/// point's own sin/cos.
#[derive(Debug, Clone, Copy)]
pub struct Cone {
    centre: [f64; 3],
    cos_radius: f64,
    radius_deg: f64,
}

impl Cone {
    pub fn new(ra0: f64, dec0: f64, radius_deg: f64) -> Self {
        Cone {
            centre: unit_vector(ra0, dec0),
            cos_radius: radius_deg.to_radians().cos(),
            radius_deg,
        }
    }

    /// True when the point is inside the cone or on its edge. A negative or NaN radius
    /// contains nothing; a radius of 180° or more contains the whole sky.
    #[inline]
    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        if self.radius_deg.is_nan() || self.radius_deg < 0.0 || !ra.is_finite() || !dec.is_finite()
        {
            return false;
        }
        if self.radius_deg >= 180.0 {
            return true;
        }
        let p = unit_vector(ra, dec);
        let dot = p[0] * self.centre[0] + p[1] * self.centre[1] + p[2] * self.centre[2];
        dot >= self.cos_radius
    }
}

/// Unit vector of a direction given in degrees.
#[inline]
pub fn unit_vector(ra: f64, dec: f64) -> [f64; 3] {
    let (sa, ca) = ra.to_radians().sin_cos();
    let (sd, cd) = dec.to_radians().sin_cos();
    [cd * ca, cd * sa, sd]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_of_known_pairs() {
        assert!((ang_sep_deg(0.0, 0.0, 90.0, 0.0) - 90.0).abs() < 1e-12);
        assert!((ang_sep_deg(0.0, 90.0, 123.0, -90.0) - 180.0).abs() < 1e-12);
        // 1 milliarcsecond apart in declination: must not collapse to 0 (law-of-cosines failure).
        let mas = 1.0 / 3.6e6;
        assert!((ang_sep_deg(10.0, 20.0, 10.0, 20.0 + mas) - mas).abs() < mas * 1e-6);
        // RA wrap: 359.9 and 0.1 at the equator are 0.2 degrees apart, not 359.8.
        assert!((ang_sep_deg(359.9, 0.0, 0.1, 0.0) - 0.2).abs() < 1e-12);
        // At dec 60, 1 degree of RA is 0.5 degrees of arc (to first order).
        let d = ang_sep_deg(0.0, 60.0, 1.0, 60.0);
        assert!((d - 0.49998).abs() < 1e-4, "{d}");
    }

    #[test]
    fn cone_contains_edges_and_wrap() {
        let c = Cone::new(359.95, 0.0, 0.1);
        assert!(c.contains(0.04, 0.0));
        assert!(!c.contains(0.06, 0.0));
        assert!(!Cone::new(0.0, 0.0, -1.0).contains(0.0, 0.0));
        assert!(Cone::new(0.0, 0.0, 180.0).contains(180.0, 0.0));
        let pole = Cone::new(0.0, 90.0, 1.0);
        assert!(pole.contains(200.0, 89.5));
        assert!(!pole.contains(200.0, 88.9));
    }
}

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

/// Cross product.
#[inline]
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[inline]
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// A coordinate box, as ADQL's `BOX(frame, ra_c, dec_c, width, height)` and pgsphere's `sbox`
/// define it: RA within `width/2` of `ra_c` (coordinate degrees, wrapping at 0/360; a width of
/// 360 or more is every RA) and Dec within `height/2` of `dec_c`. A box reaching past a pole
/// continues over it: the part beyond +90 (or below -90) is the cap around the pole on the
/// opposite meridians (RA within `width/2` of `ra_c + 180`), as a path up the meridian `ra_c`
/// continues down `ra_c + 180`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkyBox {
    pub ra_c: f64,
    pub dec_c: f64,
    pub width: f64,
    pub height: f64,
}

impl SkyBox {
    /// Whether `ra` is within `half` degrees of `centre` along the RA circle.
    #[inline]
    fn ra_within(ra: f64, centre: f64, half: f64) -> bool {
        if half >= 180.0 {
            return true;
        }
        let d = (ra - centre).rem_euclid(360.0);
        d <= half || d >= 360.0 - half
    }

    /// True when (ra, dec) is inside the box or on its edge. Non-finite input or a negative
    /// size contains nothing.
    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        let (w, h) = (self.width / 2.0, self.height / 2.0);
        if !(ra.is_finite() && dec.is_finite() && w >= 0.0 && h >= 0.0 && self.ra_c.is_finite())
            || dec.abs() > 90.0
        {
            return false;
        }
        let (lo, hi) = (self.dec_c - h, self.dec_c + h);
        if dec >= lo && dec <= hi.min(90.0) && Self::ra_within(ra, self.ra_c, w) {
            return true;
        }
        let opposite = self.ra_c + 180.0;
        (hi > 90.0 && dec >= 180.0 - hi && Self::ra_within(ra, opposite, w))
            || (lo < -90.0 && dec <= -180.0 - lo && Self::ra_within(ra, opposite, w))
    }

    /// The (RA min, Dec min, RA max, Dec max) zones covering the box (RA min > RA max means
    /// the zone wraps through 0).
    pub fn zones(&self) -> Vec<(f64, f64, f64, f64)> {
        let (w, h) = (self.width / 2.0, self.height / 2.0);
        let ra_range = |c: f64| {
            if w >= 180.0 {
                (0.0, 360.0)
            } else {
                ((c - w).rem_euclid(360.0), (c + w).rem_euclid(360.0))
            }
        };
        let (lo, hi) = (self.dec_c - h, self.dec_c + h);
        let (a, b) = ra_range(self.ra_c);
        let mut z = vec![(a, lo.max(-90.0), b, hi.min(90.0))];
        let (oa, ob) = ra_range(self.ra_c + 180.0);
        if hi > 90.0 {
            z.push((oa, (180.0 - hi).max(-90.0), ob, 90.0));
        }
        if lo < -90.0 {
            z.push((oa, -90.0, ob, (-180.0 - lo).min(90.0)));
        }
        z
    }
}

/// A spherical polygon with great-circle edges between consecutive vertices (degrees), closed
/// implicitly, smaller than a hemisphere, in either orientation. Convex polygons are tested
/// against their edges' planes; others by the winding number around the point.
#[derive(Debug, Clone)]
pub struct Polygon {
    vertices: Vec<[f64; 3]>,
    /// Edge planes oriented so that the inside is positive (convex polygons only).
    planes: Option<Vec<[f64; 3]>>,
}

impl Polygon {
    /// `None` for fewer than three vertices or non-finite coordinates.
    pub fn new(vertices: &[(f64, f64)]) -> Option<Self> {
        if vertices.len() < 3
            || vertices
                .iter()
                .any(|(a, d)| !a.is_finite() || !d.is_finite() || d.abs() > 90.0)
        {
            return None;
        }
        let v: Vec<[f64; 3]> = vertices.iter().map(|&(a, d)| unit_vector(a, d)).collect();
        let n = v.len();
        let mut planes: Vec<[f64; 3]> = (0..n).map(|i| cross(v[i], v[(i + 1) % n])).collect();
        // Convex when every other vertex lies on one side of every edge plane.
        let mut sign = 0.0f64;
        let mut convex = true;
        'outer: for (i, p) in planes.iter().enumerate() {
            for (j, vj) in v.iter().enumerate() {
                if j == i || j == (i + 1) % n {
                    continue;
                }
                let s = dot(*p, *vj);
                if s.abs() < 1e-15 {
                    continue;
                }
                if sign == 0.0 {
                    sign = s.signum();
                } else if s.signum() != sign {
                    convex = false;
                    break 'outer;
                }
            }
        }
        let planes = if convex && sign != 0.0 {
            if sign < 0.0 {
                for p in &mut planes {
                    *p = [-p[0], -p[1], -p[2]];
                }
            }
            Some(planes)
        } else {
            None
        };
        Some(Polygon {
            vertices: v,
            planes,
        })
    }

    /// True when (ra, dec) is inside the polygon or on an edge (to rounding).
    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        if !ra.is_finite() || !dec.is_finite() || dec.abs() > 90.0 {
            return false;
        }
        let p = unit_vector(ra, dec);
        if let Some(planes) = &self.planes {
            return planes.iter().all(|n| dot(*n, p) >= -1e-15);
        }
        // Winding number: the sum of the signed angles the edges subtend at p.
        let n = self.vertices.len();
        let mut total = 0.0;
        for i in 0..n {
            let (a, b) = (self.vertices[i], self.vertices[(i + 1) % n]);
            let ta = cross(p, a);
            let tb = cross(p, b);
            total += dot(cross(ta, tb), p).atan2(dot(ta, tb));
        }
        total.abs() > std::f64::consts::PI
    }

    /// The vertices as (ra, dec) degrees.
    pub fn vertices_deg(&self) -> Vec<(f64, f64)> {
        self.vertices
            .iter()
            .map(|v| {
                let ra = v[1].atan2(v[0]).to_degrees().rem_euclid(360.0);
                let dec = v[2].clamp(-1.0, 1.0).asin().to_degrees();
                (ra, dec)
            })
            .collect()
    }
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

    #[test]
    fn boxes_wrap_at_ra_zero_and_continue_over_the_poles() {
        let b = SkyBox {
            ra_c: 359.0,
            dec_c: 0.0,
            width: 4.0,
            height: 2.0,
        };
        assert!(b.contains(0.9, 0.5) && b.contains(357.1, -0.9));
        assert!(!b.contains(1.1, 0.0) && !b.contains(356.9, 0.0) && !b.contains(0.0, 1.1));
        // Over the north pole: up the meridian 30, down the meridian 210.
        let p = SkyBox {
            ra_c: 30.0,
            dec_c: 88.0,
            width: 10.0,
            height: 8.0,
        };
        assert!(p.contains(30.0, 89.9) && p.contains(212.0, 89.0) && p.contains(208.0, 88.1));
        assert!(
            !p.contains(212.0, 87.9),
            "beyond 92 - 90 = 2 degrees over the pole"
        );
        assert!(!p.contains(120.0, 89.0), "not on the box's meridians");
        // Full RA range.
        let cap = SkyBox {
            ra_c: 0.0,
            dec_c: -89.0,
            width: 360.0,
            height: 4.0,
        };
        assert!(
            cap.contains(123.0, -89.5) && cap.contains(300.0, -87.5) && !cap.contains(5.0, -86.0)
        );
        assert!(
            !SkyBox {
                ra_c: 0.0,
                dec_c: 0.0,
                width: -1.0,
                height: 1.0
            }
            .contains(0.0, 0.0)
        );
    }

    #[test]
    fn polygons_convex_and_concave_in_either_orientation() {
        let square = [(10.0, 10.0), (12.0, 10.0), (12.0, 12.0), (10.0, 12.0)];
        let mut reversed = square;
        reversed.reverse();
        for v in [square, reversed] {
            let p = Polygon::new(&v).unwrap();
            assert!(p.contains(11.0, 11.0) && p.contains(10.0, 10.0));
            assert!(!p.contains(9.9, 11.0) && !p.contains(11.0, 12.1));
        }
        // A concave "L": the notch is outside.
        let l = [
            (0.0, 0.0),
            (4.0, 0.0),
            (4.0, 1.0),
            (1.0, 1.0),
            (1.0, 4.0),
            (0.0, 4.0),
        ];
        let p = Polygon::new(&l).unwrap();
        assert!(p.contains(0.5, 3.0) && p.contains(3.0, 0.5));
        assert!(!p.contains(3.0, 3.0), "the notch");
        // Across RA = 0 and around a pole.
        let wrap = Polygon::new(&[(359.0, -1.0), (1.0, -1.0), (1.0, 1.0), (359.0, 1.0)]).unwrap();
        assert!(wrap.contains(0.0, 0.0) && wrap.contains(359.5, 0.5) && !wrap.contains(2.0, 0.0));
        let polar =
            Polygon::new(&[(0.0, 85.0), (90.0, 85.0), (180.0, 85.0), (270.0, 85.0)]).unwrap();
        assert!(
            polar.contains(45.0, 89.0) && polar.contains(0.0, 90.0) && !polar.contains(45.0, 80.0)
        );
        assert!(Polygon::new(&[(0.0, 0.0), (1.0, 1.0)]).is_none());
    }
}

//! Sky regions of the containment functions and the HEALPix ranges that cover them — the
//! basis of spatial pruning: a `WHERE cone_contains(ra, dec, 150, 2.2, 0.01)` (or
//! `box_contains`, `polygon_contains`, with constant region arguments) becomes ranges of the
//! order-29 NESTED index `_healpix_29` that every matching row must fall in, so a table
//! provider can skip the files, row groups and pages outside them before computing a single
//! distance.
//!
//! The ranges are a superset: cdshealpix's approximate coverages (every cell that may overlap
//! the region), computed for the region grown by a few milliarcseconds, so a point on the edge
//! is never lost to rounding.

use crate::sphere::SkyBox;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, col, lit};

/// How much regions are grown before their coverage is computed, degrees (3.6 mas).
const GROW_DEG: f64 = 1e-6;

/// A region a containment predicate selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    Cone { ra: f64, dec: f64, radius: f64 },
    Box(SkyBox),
    Polygon(Vec<(f64, f64)>),
}

/// A constant number of an expression (a literal, possibly negated or cast).
fn constant(e: &Expr) -> Option<f64> {
    match e {
        Expr::Literal(v, _) => match v.cast_to(&arrow::datatypes::DataType::Float64).ok()? {
            ScalarValue::Float64(Some(x)) if x.is_finite() => Some(x),
            _ => None,
        },
        Expr::Negative(inner) => constant(inner).map(|x| -x),
        Expr::Cast(c) => constant(&c.expr),
        Expr::TryCast(c) => constant(&c.expr),
        _ => None,
    }
}

fn is_column(e: &Expr, name: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == name,
        Expr::Cast(c) => is_column(&c.expr, name),
        _ => false,
    }
}

impl Region {
    /// The region of a containment call `f(ra_col, dec_col, constants...)`: `cone_contains`,
    /// `box_contains` or `polygon_contains` on the given position columns, with constant
    /// region arguments. `None` for anything else.
    pub fn from_expr(e: &Expr, ra_col: &str, dec_col: &str) -> Option<Region> {
        let Expr::ScalarFunction(f) = e else {
            return None;
        };
        let args = &f.args;
        if args.len() < 2 || !is_column(&args[0], ra_col) || !is_column(&args[1], dec_col) {
            return None;
        }
        let c: Vec<f64> = args[2..].iter().map(constant).collect::<Option<_>>()?;
        match (f.func.name(), c.len()) {
            ("cone_contains", 3) => Some(Region::Cone {
                ra: c[0],
                dec: c[1],
                radius: c[2],
            }),
            ("box_contains", 4) => Some(Region::Box(SkyBox {
                ra_c: c[0],
                dec_c: c[1],
                width: c[2],
                height: c[3],
            })),
            ("polygon_contains", n) if n >= 6 && n % 2 == 0 => {
                Some(Region::Polygon(c.chunks(2).map(|p| (p[0], p[1])).collect()))
            }
            _ => None,
        }
    }

    /// Every region among the AND-ed conjuncts of `e`.
    pub fn all_in(e: &Expr, ra_col: &str, dec_col: &str) -> Vec<Region> {
        match e {
            Expr::BinaryExpr(b) if b.op == datafusion::logical_expr::Operator::And => {
                let mut v = Region::all_in(&b.left, ra_col, dec_col);
                v.extend(Region::all_in(&b.right, ra_col, dec_col));
                v
            }
            _ => Region::from_expr(e, ra_col, dec_col).into_iter().collect(),
        }
    }

    /// Ranges [lo, hi) of `_healpix_29` covering the region, at most `max_ranges` of them
    /// (coarser cells when needed); `None` when the region cannot be covered (whole sky,
    /// invalid), meaning: no pruning. An empty vector means nothing can match.
    pub fn healpix_ranges(&self, max_ranges: usize) -> Option<Vec<(i64, i64)>> {
        let size = self.size_deg()?;
        if size <= 0.0 {
            return Some(Vec::new());
        }
        // Cells of about a quarter of the region across, then coarser until few ranges.
        let cell0 = 58.6; // order-0 cell size, degrees
        let mut depth = ((cell0 / (size / 4.0)).log2().floor()).clamp(0.0, 29.0) as u8;
        loop {
            let ranges = std::panic::catch_unwind(|| self.cover(depth)).ok()??;
            if ranges.len() <= max_ranges.max(1) || depth == 0 {
                return Some(ranges);
            }
            depth -= 1;
        }
    }

    /// The angular size of the region (its diameter or longest side), degrees.
    fn size_deg(&self) -> Option<f64> {
        match self {
            Region::Cone { dec, radius, .. } => {
                if *radius >= 90.0 || dec.abs() > 90.0 {
                    return None;
                }
                Some(if *radius < 0.0 { 0.0 } else { 2.0 * radius })
            }
            Region::Box(b) => {
                if b.width < 0.0 || b.height < 0.0 {
                    return Some(0.0);
                }
                if b.height >= 180.0 || b.dec_c.abs() > 90.0 {
                    return None;
                }
                Some(b.width.min(360.0).max(b.height).max(1e-9))
            }
            Region::Polygon(v) => {
                let p = crate::sphere::Polygon::new(v)?;
                let vs = p.vertices_deg();
                let mut d: f64 = 0.0;
                for a in &vs {
                    for b in &vs {
                        d = d.max(crate::sphere::ang_sep_deg(a.0, a.1, b.0, b.1));
                    }
                }
                (d < 90.0).then_some(d.max(1e-9))
            }
        }
    }

    fn cover(&self, depth: u8) -> Option<Vec<(i64, i64)>> {
        use cdshealpix::nested;
        let bmocs: Vec<nested::bmoc::BMOC> = match self {
            Region::Cone { ra, dec, radius } => vec![nested::cone_coverage_approx(
                depth,
                ra.rem_euclid(360.0).to_radians(),
                dec.to_radians(),
                (radius + GROW_DEG).to_radians(),
            )],
            Region::Box(b) => {
                let grown = SkyBox {
                    width: b.width + 2.0 * GROW_DEG,
                    height: b.height + 2.0 * GROW_DEG,
                    ..*b
                };
                grown
                    .zones()
                    .into_iter()
                    .map(|(a, lo, z, hi)| {
                        let (lon_min, lon_max) = if z - a >= 360.0 || (a == 0.0 && z == 360.0) {
                            (0.0, 2.0 * std::f64::consts::PI)
                        } else {
                            (a.to_radians(), z.to_radians())
                        };
                        nested::zone_coverage(
                            depth,
                            lon_min,
                            lo.max(-90.0).to_radians(),
                            lon_max,
                            hi.min(90.0).to_radians(),
                        )
                    })
                    .collect()
            }
            Region::Polygon(v) => {
                // Grow by moving each vertex away from the centroid by a few mas.
                let p = crate::sphere::Polygon::new(v)?;
                let vs = p.vertices_deg();
                let (cx, cy, cz) = vs.iter().fold((0.0, 0.0, 0.0), |acc, &(a, d)| {
                    let u = crate::sphere::unit_vector(a, d);
                    (acc.0 + u[0], acc.1 + u[1], acc.2 + u[2])
                });
                let cra = cy.atan2(cx).to_degrees();
                let cdec = cz.atan2((cx * cx + cy * cy).sqrt()).to_degrees();
                let grown: Vec<(f64, f64)> = vs
                    .iter()
                    .map(|&(a, d)| {
                        let s = crate::sphere::ang_sep_deg(cra, cdec, a, d).max(1e-12);
                        let k = (s + 10.0 * GROW_DEG) / s;
                        let u = crate::sphere::unit_vector(a, d);
                        let c = crate::sphere::unit_vector(cra, cdec);
                        let w = [
                            c[0] + k * (u[0] - c[0]),
                            c[1] + k * (u[1] - c[1]),
                            c[2] + k * (u[2] - c[2]),
                        ];
                        let lon = w[1].atan2(w[0]).rem_euclid(2.0 * std::f64::consts::PI);
                        let lat = w[2].atan2((w[0] * w[0] + w[1] * w[1]).sqrt());
                        (lon, lat)
                    })
                    .collect();
                vec![nested::polygon_coverage(depth, &grown, true)]
            }
        };
        let shift = 2 * (29 - depth) as u32;
        let mut ranges: Vec<(i64, i64)> = bmocs
            .iter()
            .flat_map(|b| {
                b.to_ranges()
                    .iter()
                    .map(|r| ((r.start << shift) as i64, (r.end << shift) as i64))
                    .collect::<Vec<_>>()
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        Some(merged)
    }
}

/// `(col >= lo1 AND col < hi1) OR (col >= lo2 AND col < hi2) ...` (`false` for no range).
pub fn ranges_predicate(column: &str, ranges: &[(i64, i64)]) -> Expr {
    let mut it = ranges
        .iter()
        .map(|&(lo, hi)| col(column).gt_eq(lit(lo)).and(col(column).lt(lit(hi))));
    match it.next() {
        None => lit(false),
        Some(first) => it.fold(first, |acc, e| acc.or(e)),
    }
}

/// Intersection of two sorted, disjoint range lists.
pub fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo < hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healpix::nested_index;
    use crate::sphere::{Cone, Polygon};

    fn covered(ranges: &[(i64, i64)], ra: f64, dec: f64) -> bool {
        let i = nested_index(29, ra, dec).unwrap();
        ranges.iter().any(|&(lo, hi)| i >= lo && i < hi)
    }

    /// Deterministic points around a centre.
    fn points(ra0: f64, dec0: f64, spread: f64, n: usize) -> Vec<(f64, f64)> {
        let mut s = 12345u64;
        let mut u = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let dec = (dec0 + (u() - 0.5) * 2.0 * spread).clamp(-90.0, 90.0);
                let ra = (ra0 + (u() - 0.5) * 2.0 * spread / dec.to_radians().cos().max(0.05))
                    .rem_euclid(360.0);
                (ra, dec)
            })
            .collect()
    }

    #[test]
    fn cone_ranges_cover_every_point_inside_and_prune_most_of_the_sky() {
        for &(ra, dec, r) in &[
            (150.0, 2.2, 1.0 / 60.0),
            (0.01, -30.0, 1.0),
            (200.0, 89.9, 0.5),
            (10.0, -89.95, 0.2),
        ] {
            let region = Region::Cone { ra, dec, radius: r };
            let ranges = region.healpix_ranges(64).unwrap();
            assert!(!ranges.is_empty() && ranges.len() <= 64);
            let cone = Cone::new(ra, dec, r);
            let mut inside = 0;
            for (a, d) in points(ra, dec, 1.5 * r, 20_000) {
                if cone.contains(a, d) {
                    inside += 1;
                    assert!(
                        covered(&ranges, a, d),
                        "({a}, {d}) in cone {ra},{dec},{r} not covered"
                    );
                }
            }
            assert!(inside > 1000);
            let total: i64 = ranges.iter().map(|r| r.1 - r.0).sum();
            assert!(
                (total as f64) < 0.01 * 12.0 * 4f64.powi(29),
                "covers {total}"
            );
        }
    }

    #[test]
    fn box_ranges_cover_wraps_and_poles() {
        for b in [
            SkyBox {
                ra_c: 0.0,
                dec_c: 10.0,
                width: 4.0,
                height: 2.0,
            },
            SkyBox {
                ra_c: 359.0,
                dec_c: -5.0,
                width: 10.0,
                height: 1.0,
            },
            SkyBox {
                ra_c: 30.0,
                dec_c: 88.0,
                width: 20.0,
                height: 8.0,
            },
            SkyBox {
                ra_c: 100.0,
                dec_c: -89.0,
                width: 360.0,
                height: 4.0,
            },
        ] {
            let ranges = Region::Box(b).healpix_ranges(64).unwrap();
            let mut inside = 0;
            for (a, d) in points(b.ra_c, b.dec_c, b.width.max(b.height), 40_000)
                .into_iter()
                .chain(points(
                    b.ra_c + 180.0,
                    89.0_f64.copysign(b.dec_c),
                    3.0,
                    5_000,
                ))
            {
                if b.contains(a, d) {
                    inside += 1;
                    assert!(covered(&ranges, a, d), "({a}, {d}) in {b:?} not covered");
                }
            }
            assert!(inside > 100, "{b:?}: {inside}");
        }
    }

    #[test]
    fn polygon_ranges_cover_every_point_inside() {
        let v = vec![
            (10.0, -5.0),
            (12.0, -5.5),
            (12.5, -3.0),
            (11.0, -4.0),
            (10.2, -2.0),
        ];
        let p = Polygon::new(&v).unwrap();
        let ranges = Region::Polygon(v).healpix_ranges(64).unwrap();
        let mut inside = 0;
        for (a, d) in points(11.2, -4.0, 2.0, 40_000) {
            if p.contains(a, d) {
                inside += 1;
                assert!(covered(&ranges, a, d));
            }
        }
        assert!(inside > 1000);
    }

    #[test]
    fn expressions_become_regions() {
        let f = crate::cone::ConeContains::new();
        let udf = std::sync::Arc::new(datafusion::logical_expr::ScalarUDF::from(f));
        let e = udf.call(vec![col("ra"), col("dec"), lit(150.0), lit(-2.0), lit(0.1)]);
        assert_eq!(
            Region::from_expr(&e, "ra", "dec"),
            Some(Region::Cone {
                ra: 150.0,
                dec: -2.0,
                radius: 0.1
            })
        );
        assert_eq!(Region::from_expr(&e, "ra", "decl"), None);
        let both = e.clone().and(col("flux").gt(lit(3.0)));
        assert_eq!(Region::all_in(&both, "ra", "dec").len(), 1);
        let nonconst = udf.call(vec![col("ra"), col("dec"), col("x"), lit(-2.0), lit(0.1)]);
        assert_eq!(Region::from_expr(&nonconst, "ra", "dec"), None);
        assert_eq!(
            intersect(&[(0, 10), (20, 30)], &[(5, 25)]),
            vec![(5, 10), (20, 25)]
        );
    }
}

//! Margin caches for cross-matching at partition edges (the HATS margin catalog): for each
//! partition, the rows of *other* partitions that lie within `threshold` arcseconds of it.
//!
//! A row can only be near its partition's boundary if its HEALPix cell at the *margin order*
//! (cells at least twice the threshold across) is on the partition's internal edge; only those
//! rows get the cone test, so assigning margins costs a few bit operations per row. The cone
//! test uses cdshealpix's approximate cone coverage, a superset of the exact answer, so a
//! margin may hold a few rows slightly beyond the threshold but never misses one.

use super::hats::{INDEX_ORDER, Pixel};

/// Nominal HEALPix cell size at `order`, arcseconds.
fn cell_arcsec(order: u8) -> f64 {
    (4.0 * std::f64::consts::PI / 12.0).sqrt().to_degrees() * 3600.0 / 2f64.powi(order as i32)
}

/// The deepest order whose cells are at least twice `threshold_arcsec` across (at most 29).
pub fn margin_order(threshold_arcsec: f64) -> u8 {
    (0..=INDEX_ORDER)
        .rev()
        .find(|&o| cell_arcsec(o) >= 2.0 * threshold_arcsec)
        .unwrap_or(0)
}

/// Spreads the even bits of `v` to a compact integer (the x of a NESTED index).
fn compact_even(mut v: u64) -> u64 {
    v &= 0x5555_5555_5555_5555;
    v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
    v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF;
    v
}

/// True when the order-`m` cell holding `index` (a `_healpix_29` value) touches the boundary
/// of its ancestor `part` (m ≥ part.order).
pub fn on_partition_edge(index: i64, part: Pixel, m: u8) -> bool {
    if m <= part.order {
        return true;
    }
    let cell = (index as u64) >> (2 * (INDEX_ORDER - m) as u32);
    let d = (m - part.order) as u32;
    let local = cell & ((1u64 << (2 * d)) - 1);
    let x = compact_even(local);
    let y = compact_even(local >> 1);
    let max = (1u64 << d) - 1;
    x == 0 || y == 0 || x == max || y == max
}

/// The partitions (indices into `parts`, sorted by index range) other than `own` that the cone
/// of radius `threshold_arcsec` around (ra, dec) touches.
pub fn neighbours(
    parts: &[Pixel],
    own: usize,
    ra: f64,
    dec: f64,
    threshold_arcsec: f64,
) -> Vec<usize> {
    let max_order = parts.iter().map(|p| p.order).max().unwrap_or(0);
    let bmoc = cdshealpix::nested::cone_coverage_approx(
        max_order,
        ra.rem_euclid(360.0).to_radians(),
        dec.to_radians(),
        (threshold_arcsec / 3600.0).to_radians(),
    );
    let shift = 2 * (INDEX_ORDER - max_order) as u32;
    let mut out = Vec::new();
    for r in bmoc.to_ranges().iter() {
        let (lo, hi) = ((r.start << shift) as i64, (r.end << shift) as i64);
        // First partition whose range ends after lo.
        let mut i = parts.partition_point(|p| p.index_range().1 <= lo);
        while i < parts.len() && parts[i].index_range().0 < hi {
            if i != own && !out.contains(&i) {
                out.push(i);
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use astropipe_udfs::healpix::nested_index;

    #[test]
    fn margin_order_cells_exceed_twice_the_threshold() {
        let m = margin_order(10.0);
        assert!(
            cell_arcsec(m) >= 20.0 && cell_arcsec(m + 1) < 20.0,
            "order {m}"
        );
    }

    #[test]
    fn edges_of_a_partition() {
        let part = Pixel {
            order: 3,
            pixel: 100,
        };
        let (lo, hi) = part.index_range();
        // The first and last index of a partition are in its corner cells.
        assert!(on_partition_edge(lo, part, 10));
        assert!(on_partition_edge(hi - 1, part, 10));
        // The centre of the partition is far from its edges.
        let (ra, dec) = cdshealpix::nested::center(3, 100);
        let centre = nested_index(29, ra.to_degrees(), dec.to_degrees()).unwrap();
        assert!(!on_partition_edge(centre, part, 10));
    }

    #[test]
    fn points_near_a_border_see_the_other_side() {
        // Two order-1 partitions that share a border: pixels 0 and 1 of base pixel 0.
        let parts = vec![Pixel { order: 1, pixel: 0 }, Pixel { order: 1, pixel: 1 }];
        // A point of partition 0 right next to partition 1: find one by walking along x.
        let (ra, dec) = cdshealpix::nested::center(1, 0);
        let (ra, dec) = (ra.to_degrees(), dec.to_degrees());
        let far = neighbours(&parts, 0, ra, dec, 10.0);
        assert!(
            far.is_empty(),
            "the centre of a partition has no neighbours"
        );
        let mut found = false;
        for step in 0..20000 {
            let r = ra + step as f64 * 0.002;
            let idx = nested_index(29, r, dec).unwrap();
            if Pixel::of_index(idx, 1).pixel != 0 {
                // Just crossed into another cell: the last point before is near the border.
                let prev = ra + (step - 1) as f64 * 0.002;
                if Pixel::of_index(nested_index(29, prev, dec).unwrap(), 1).pixel == 0 {
                    found = !neighbours(&parts, 0, prev, dec, 10.0).is_empty()
                        || Pixel::of_index(idx, 1).pixel != 1;
                }
                break;
            }
        }
        assert!(found);
    }
}

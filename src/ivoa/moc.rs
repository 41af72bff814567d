//! IVOA MOC 2.0, space only: the sky coverage of a set of HEALPix cells (NESTED) at one
//! maximum order, normalized (every complete quad of sibling cells written as its parent),
//! in the standard's two serializations — FITS (a binary table of NUNIQ numbers,
//! `4·4^order + ipix`, sorted) and JSON (`{"order": [ipix, ...], ...}`, the maximum order
//! always present, empty when nothing is left at it).

use crate::fits::header::HeaderValue;
use crate::fits::writer::FitsWriter;

/// The deepest order a MOC may have (HEALPix order 29, as `_healpix_29`).
pub const MAX_ORDER: u8 = 29;

/// The column a table's MOC is made from: the NESTED order-29 index of each row.
pub const INDEX_COLUMN: &str = crate::catalog::schema::HEALPIX_29;

/// A spatial MOC: its maximum order and, per order 0..=max, the sorted cells at that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moc {
    order: u8,
    levels: Vec<Vec<u64>>,
}

impl Moc {
    /// The MOC of `cells` (NESTED indexes at `order`, in any order, repeats allowed).
    pub fn from_cells(order: u8, mut cells: Vec<u64>) -> Moc {
        assert!(order <= MAX_ORDER, "order {order} > {MAX_ORDER}");
        cells.sort_unstable();
        cells.dedup();
        let mut levels = vec![Vec::new(); order as usize + 1];
        let mut current = cells;
        for o in (1..=order as usize).rev() {
            let mut keep = Vec::with_capacity(current.len());
            let mut parents = Vec::new();
            let mut i = 0;
            while i < current.len() {
                let c = current[i];
                if c.is_multiple_of(4) && i + 3 < current.len() && current[i + 3] == c + 3 {
                    // Sorted and distinct: c, c+1, c+2, c+3 are all there.
                    parents.push(c / 4);
                    i += 4;
                } else {
                    keep.push(c);
                    i += 1;
                }
            }
            levels[o] = keep;
            current = parents;
        }
        levels[0] = current;
        Moc { order, levels }
    }

    /// The maximum order.
    pub fn order(&self) -> u8 {
        self.order
    }

    /// The cells at `order` (empty above the maximum order).
    pub fn cells(&self, order: u8) -> &[u64] {
        self.levels
            .get(order as usize)
            .map_or(&[], |v| v.as_slice())
    }

    /// The cells, all orders, as sorted NUNIQ numbers.
    pub fn nuniq(&self) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(o, cells)| cells.iter().map(move |&c| ((4u64 << (2 * o)) + c) as i64))
            .collect();
        out.sort_unstable();
        out
    }

    /// The fraction of the sky covered.
    pub fn sky_fraction(&self) -> f64 {
        self.levels
            .iter()
            .enumerate()
            .map(|(o, cells)| cells.len() as f64 / (12.0 * 4f64.powi(o as i32)))
            .sum()
    }

    /// The JSON serialization (MOC 2.0 section 4.3.2).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (o, cells) in self.levels.iter().enumerate() {
            if !cells.is_empty() || o == self.order as usize {
                m.insert(o.to_string(), serde_json::json!(cells));
            }
        }
        serde_json::Value::Object(m)
    }

    /// The FITS serialization (MOC 2.0 section 4.3.1): an empty primary HDU, then a binary
    /// table with one 64-bit column `UNIQ`.
    pub fn to_fits(&self) -> Vec<u8> {
        let text = |s: &str| HeaderValue::Str(s.into());
        let order = HeaderValue::Int(i64::from(self.order));
        let mut w = FitsWriter::new();
        w.bintable_i64(
            "UNIQ",
            &self.nuniq(),
            &[
                ("MOCVERS", text("2.0")),
                ("MOCDIM", text("SPACE")),
                ("ORDERING", text("NUNIQ")),
                ("COORDSYS", text("C")),
                ("MOCORD_S", order.clone()),
                // MOC 1.x readers look for MOCORDER.
                ("MOCORDER", order),
                ("MOCTOOL", text("astropipe")),
            ],
        );
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_quads_become_their_parents() {
        // Order 2: all 16 children of order-0 cell 3 (48..64), three of cell 1's order-1
        // child 4 (64..68 without 67), and one more.
        let mut cells: Vec<u64> = (48..64).collect();
        cells.extend([64, 65, 66, 100, 100]);
        let moc = Moc::from_cells(2, cells);
        assert_eq!(moc.cells(0), &[3]);
        assert_eq!(moc.cells(1), &[] as &[u64]);
        assert_eq!(moc.cells(2), &[64, 65, 66, 100]);
        assert_eq!(
            moc.nuniq(),
            vec![4 + 3, 64 + 64, 64 + 65, 64 + 66, 64 + 100]
        );
        assert!((moc.sky_fraction() - (1.0 / 12.0 + 4.0 / 192.0)).abs() < 1e-12);
        assert_eq!(
            moc.to_json(),
            serde_json::json!({"0": [3], "2": [64, 65, 66, 100]})
        );
        // The whole sky at any order is the twelve base cells; the maximum order stays.
        let all = Moc::from_cells(3, (0..12 * 64).collect());
        assert_eq!(all.cells(0), &(0..12).collect::<Vec<u64>>()[..]);
        assert_eq!(all.to_json()["3"], serde_json::json!([]));
    }

    #[test]
    fn the_fits_serialization_reads_back() {
        let moc = Moc::from_cells(5, vec![7, 1000, 1001, 1002, 1003, 5000]);
        let bytes = moc.to_fits();
        assert_eq!(bytes.len() % 2880, 0);
        let f = crate::fits::FitsFile::from_bytes("moc".into(), bytes).unwrap();
        let hdu = f.hdu(1).unwrap();
        let h = &hdu.header;
        assert_eq!(h.str("XTENSION"), Some("BINTABLE"));
        assert_eq!(h.str("ORDERING"), Some("NUNIQ"));
        assert_eq!(h.str("TFORM1"), Some("1K"));
        assert_eq!(h.i64("MOCORD_S"), Some(5));
        // 1000..1003 are order-4 cell 250 (4·4^4 + 250); 7 and 5000 stay at order 5.
        let rows: Vec<i64> = f
            .data(hdu)
            .chunks(8)
            .map(|c| i64::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(rows, vec![1024 + 250, 4096 + 7, 4096 + 5000]);
        assert_eq!(rows, moc.nuniq());
    }
}

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

    /// The MOC of the cells set in `bits`, or — when it would hold more than `max_cells`
    /// cells once normalized — that number of cells, found before any list is made.
    pub fn from_bits(bits: CellBits, max_cells: usize) -> Result<Moc, usize> {
        let order = bits.order as usize;
        // Per order, the cells left there once complete quads moved up, as bitmaps.
        let mut left: Vec<Vec<u64>> = vec![Vec::new(); order + 1];
        let mut words = bits.words;
        for o in (1..=order).rev() {
            // The four children of parent p are bits 4p..4p+3: nibble p % 16 of word p / 16.
            let mut parents = vec![0u64; (words.len() * 16).div_ceil(64)];
            for (wi, w) in words.iter_mut().enumerate() {
                if *w == 0 {
                    continue;
                }
                for nibble in 0..16 {
                    let m = 0xFu64 << (4 * nibble);
                    if *w & m == m {
                        *w &= !m;
                        let p = wi * 16 + nibble;
                        parents[p / 64] |= 1 << (p % 64);
                    }
                }
            }
            left[o] = words;
            words = parents;
        }
        left[0] = words;
        let cells: usize = left.iter().flatten().map(|w| w.count_ones() as usize).sum();
        if cells > max_cells {
            return Err(cells);
        }
        Ok(Moc {
            order: order as u8,
            levels: left.iter().map(|w| set_bits(w)).collect(),
        })
    }

    /// The number of cells, all orders.
    pub fn len(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Whether no cell is covered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// The deepest order [`CellBits`] takes: 12·4^11 bits are 6 MiB.
pub const MAX_BITS_ORDER: u8 = 11;

/// Cells at one order as a bitmap: the coverage of a dense table (an all-sky survey has more
/// rows than cells) in memory fixed by the order, however many rows go through it.
#[derive(Debug, Clone)]
pub struct CellBits {
    order: u8,
    words: Vec<u64>,
}

impl CellBits {
    pub fn new(order: u8) -> CellBits {
        assert!(order <= MAX_BITS_ORDER, "order {order} > {MAX_BITS_ORDER}");
        CellBits {
            order,
            words: vec![0; (12usize << (2 * order)).div_ceil(64)],
        }
    }

    /// Marks `cell` (ignored when it is not a cell of the order).
    pub fn set(&mut self, cell: u64) {
        if cell < 12u64 << (2 * self.order) {
            self.words[(cell / 64) as usize] |= 1 << (cell % 64);
        }
    }
}

fn set_bits(words: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            let b = w.trailing_zeros() as u64;
            out.push(i as u64 * 64 + b);
            w &= w - 1;
        }
    }
    out
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
    fn the_bitmap_gives_the_same_moc_as_the_cells() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (order, n) in [(0u8, 5usize), (3, 300), (5, 40_000), (7, 5_000)] {
            let total = 12u64 << (2 * order);
            // Random cells plus whole blocks, so that merging happens at several orders.
            let mut cells: Vec<u64> = (0..n).map(|_| next() % total).collect();
            cells.extend(0..total.min(64));
            let mut bits = CellBits::new(order);
            for &c in &cells {
                bits.set(c);
            }
            bits.set(total); // not a cell of the order: ignored
            let want = Moc::from_cells(order, cells);
            assert_eq!(
                Moc::from_bits(bits.clone(), usize::MAX),
                Ok(want.clone()),
                "order {order}"
            );
            // Over the bound: refused with the count, whatever the bound below it.
            assert_eq!(Moc::from_bits(bits, want.len() - 1), Err(want.len()));
        }
        let mut sky = CellBits::new(4);
        for c in 0..12 * 256 {
            sky.set(c);
        }
        let sky = Moc::from_bits(sky, 12).unwrap();
        assert_eq!(sky.cells(0).len(), 12);
        assert_eq!(sky.sky_fraction(), 1.0);
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

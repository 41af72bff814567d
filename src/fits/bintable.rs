//! Just enough of BINTABLE reading for tile-compressed images: column layout from TFORMn
//! (FITS 4.0 §7.3), scalar numeric cells, and variable-length array descriptors (`P`/`Q`) into
//! the heap. Every offset is checked against the data unit, so a lying header is an error,
//! not a panic or an out-of-bounds read.

use super::Header;

/// One column: where it sits in a row and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// Type code: L X B I J K A E D C M P Q.
    pub code: char,
    /// Element type of a variable-length array column (`1PB` → 'B').
    pub heap_code: Option<char>,
    pub repeat: usize,
    pub offset: usize,
    pub width: usize,
}

/// The table structure of a BINTABLE HDU.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub row_bytes: usize,
    pub rows: usize,
    pub heap_offset: usize,
    pub columns: Vec<Column>,
}

fn elem_bytes(code: char) -> Option<usize> {
    Some(match code {
        'L' | 'B' | 'A' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' | 'C' => 8,
        'M' => 16,
        'P' => 8,
        'Q' => 16,
        _ => return None,
    })
}

/// Parses `rTa` (e.g. `1D`, `1PB(257)`, `1QJ`, `16A`).
pub fn parse_tform(tform: &str) -> Option<(usize, char, Option<char>)> {
    let t = tform.trim();
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    let repeat = if digits.is_empty() {
        1
    } else {
        digits.parse().ok()?
    };
    let mut rest = t[digits.len()..].chars();
    let code = rest.next()?.to_ascii_uppercase();
    let heap = if code == 'P' || code == 'Q' {
        Some(rest.next()?.to_ascii_uppercase())
    } else {
        None
    };
    Some((repeat, code, heap))
}

impl Table {
    pub fn from_header(h: &Header, data_len: usize) -> Result<Self, crate::fits::Malformed> {
        let row_bytes = h.i64("NAXIS1").filter(|v| *v >= 0).ok_or("bad NAXIS1")? as usize;
        let rows = h.i64("NAXIS2").filter(|v| *v >= 0).ok_or("bad NAXIS2")? as usize;
        let nfields = h
            .i64("TFIELDS")
            .filter(|v| (0..=999).contains(v))
            .ok_or("bad TFIELDS")? as usize;
        let main = row_bytes.checked_mul(rows).ok_or("table size overflows")?;
        let heap_offset = match h.i64("THEAP") {
            Some(t) if t >= 0 => t as usize,
            Some(t) => return Err(crate::fits::malformed!("bad THEAP {t}")),
            None => main,
        };
        if main > data_len || heap_offset > data_len {
            return Err(crate::fits::malformed!(
                "the table ({main} bytes, heap at {heap_offset}) exceeds its data unit ({data_len} bytes)"
            ));
        }
        let mut columns = Vec::with_capacity(nfields);
        let mut offset = 0usize;
        for i in 1..=nfields {
            let tform = h
                .str(&format!("TFORM{i}"))
                .ok_or_else(|| crate::fits::malformed!("no TFORM{i}"))?;
            let (repeat, code, heap_code) = parse_tform(tform)
                .ok_or_else(|| crate::fits::malformed!("bad TFORM{i} = {tform:?}"))?;
            let width = if code == 'X' {
                repeat.div_ceil(8)
            } else {
                let e = elem_bytes(code)
                    .ok_or_else(|| crate::fits::malformed!("bad TFORM{i} = {tform:?}"))?;
                repeat.checked_mul(e).ok_or("column width overflows")?
            };
            let name = h
                .str(&format!("TTYPE{i}"))
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            columns.push(Column {
                name,
                code,
                heap_code,
                repeat,
                offset,
                width,
            });
            offset = offset.checked_add(width).ok_or("row width overflows")?;
        }
        if offset > row_bytes {
            return Err(crate::fits::malformed!(
                "columns need {offset} bytes per row, NAXIS1 is {row_bytes}"
            ));
        }
        Ok(Table {
            row_bytes,
            rows,
            heap_offset,
            columns,
        })
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn cell<'a>(
        &self,
        data: &'a [u8],
        row: usize,
        col: &Column,
    ) -> Result<&'a [u8], crate::fits::Malformed> {
        let start = row
            .checked_mul(self.row_bytes)
            .and_then(|s| s.checked_add(col.offset))
            .ok_or("row offset overflows")?;
        data.get(start..start + col.width).ok_or_else(|| {
            crate::fits::malformed!("row {row} of column {} is beyond the data", col.name)
        })
    }

    /// A numeric scalar cell as f64 (`I`, `J`, `K`, `E`, `D`, `B`).
    pub fn scalar(
        &self,
        data: &[u8],
        row: usize,
        col: &Column,
    ) -> Result<f64, crate::fits::Malformed> {
        let c = self.cell(data, row, col)?;
        let need = match col.code {
            'B' => 1,
            'I' => 2,
            'J' | 'E' => 4,
            _ => 8,
        };
        if c.len() < need {
            return Err(crate::fits::malformed!(
                "column {} has {} byte(s) per cell, its type needs {need}",
                col.name,
                c.len()
            ));
        }
        Ok(match col.code {
            'B' => c[0] as f64,
            'I' => i16::from_be_bytes([c[0], c[1]]) as f64,
            'J' => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
            'K' => i64::from_be_bytes(c[..8].try_into().map_err(|_| "short cell")?) as f64,
            'E' => f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
            'D' => f64::from_be_bytes(c[..8].try_into().map_err(|_| "short cell")?),
            other => {
                return Err(crate::fits::malformed!(
                    "column {} has type {other}, not a number",
                    col.name
                ));
            }
        })
    }

    /// A scalar integer cell (`B`, `I`, `J`, `K`) exactly.
    pub fn int(
        &self,
        data: &[u8],
        row: usize,
        col: &Column,
    ) -> Result<i64, crate::fits::Malformed> {
        let c = self.cell(data, row, col)?;
        let need = match col.code {
            'B' => 1,
            'I' => 2,
            'J' => 4,
            _ => 8,
        };
        if c.len() < need {
            return Err(crate::fits::malformed!(
                "column {} has {} byte(s) per cell, its type needs {need}",
                col.name,
                c.len()
            ));
        }
        Ok(match col.code {
            'B' => c[0] as i64,
            'I' => i16::from_be_bytes([c[0], c[1]]) as i64,
            'J' => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as i64,
            'K' => i64::from_be_bytes(c[..8].try_into().map_err(|_| "short cell")?),
            other => {
                return Err(crate::fits::malformed!(
                    "column {} has type {other}, not an integer",
                    col.name
                ));
            }
        })
    }

    /// The heap bytes of a variable-length array cell (element count × element size).
    pub fn heap_bytes<'a>(
        &self,
        data: &'a [u8],
        row: usize,
        col: &Column,
    ) -> Result<&'a [u8], crate::fits::Malformed> {
        let c = self.cell(data, row, col)?;
        let need = if col.code == 'Q' { 16 } else { 8 };
        if c.len() < need {
            return Err(crate::fits::malformed!(
                "column {} has {} byte(s) per cell, an array descriptor needs {need}",
                col.name,
                c.len()
            ));
        }
        let (count, off) = match col.code {
            'P' => (
                u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64,
                u32::from_be_bytes([c[4], c[5], c[6], c[7]]) as u64,
            ),
            'Q' => (
                u64::from_be_bytes(c[..8].try_into().map_err(|_| "short cell")?),
                u64::from_be_bytes(c[8..16].try_into().map_err(|_| "short cell")?),
            ),
            other => {
                return Err(crate::fits::malformed!(
                    "column {} has type {other}, not an array descriptor",
                    col.name
                ));
            }
        };
        let esize = col.heap_code.and_then(elem_bytes).unwrap_or(1) as u64;
        let len = count.checked_mul(esize).ok_or("heap length overflows")?;
        let start = (self.heap_offset as u64)
            .checked_add(off)
            .ok_or("heap offset overflows")?;
        let end = start.checked_add(len).ok_or("heap offset overflows")?;
        if end > data.len() as u64 {
            return Err(crate::fits::malformed!(
                "row {row} of {} points at heap bytes {start}..{end}, beyond the data unit ({} bytes)",
                col.name,
                data.len()
            ));
        }
        Ok(&data[start as usize..end as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tforms() {
        assert_eq!(parse_tform("1PB(257)"), Some((1, 'P', Some('B'))));
        assert_eq!(parse_tform("1QJ"), Some((1, 'Q', Some('J'))));
        assert_eq!(parse_tform("D"), Some((1, 'D', None)));
        assert_eq!(parse_tform("16A"), Some((16, 'A', None)));
        assert_eq!(parse_tform(""), None);
    }
}

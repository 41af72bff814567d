//! RICE_1 (Rice, Yeh & Miller 1993; the FITS tiled-image convention): per block of `nblock`
//! pixel differences, a `fs` code chooses between a run of zero differences, raw differences,
//! or Golomb–Rice codes with `fs` low bits. The first pixel is stored raw in `bytepix` bytes.

use super::{BitReader, CodecResult};

/// Decodes `n` pixels of `bytepix` (1, 2 or 4) bytes each, appending them to `out`:
/// unsigned for 1 byte, sign-extended for 2 and 4 (the FITS integer types of those widths).
pub fn decode(
    input: &[u8],
    n: usize,
    bytepix: usize,
    nblock: usize,
    out: &mut Vec<i64>,
) -> CodecResult<()> {
    let (fsbits, fsmax) = match bytepix {
        1 => (3u32, 6i32),
        2 => (4, 14),
        4 => (5, 25),
        other => return Err(crate::fits::malformed!("RICE_1 with BYTEPIX = {other}")),
    };
    if nblock == 0 {
        return Err("RICE_1 with BLOCKSIZE = 0".into());
    }
    let bbits = 8 * bytepix as u32;
    let mask: u32 = if bytepix == 4 {
        u32::MAX
    } else {
        (1u32 << bbits) - 1
    };
    if input.len() < bytepix {
        return Err("RICE_1 tile shorter than its first pixel".into());
    }
    let mut last: u32 = 0;
    for &b in &input[..bytepix] {
        last = (last << 8) | b as u32;
    }
    let convert = |v: u32| -> i64 {
        match bytepix {
            1 => v as u8 as i64,
            2 => v as u16 as i16 as i64,
            _ => v as i32 as i64,
        }
    };
    let mut bits = BitReader::new(&input[bytepix..]);
    out.reserve(n);
    let mut i = 0;
    while i < n {
        let end = (i + nblock).min(n);
        let fs = bits.read(fsbits)? as i32 - 1;
        if fs < 0 {
            let v = convert(last);
            out.extend(std::iter::repeat_n(v, end - i));
        } else if fs == fsmax {
            for _ in i..end {
                let diff = bits.read(bbits)?;
                last = last.wrapping_add(unzigzag(diff)) & mask;
                out.push(convert(last));
            }
        } else if fs > fsmax {
            return Err(crate::fits::malformed!("RICE_1: invalid block code {fs}"));
        } else {
            let fs = fs as u32;
            for _ in i..end {
                let diff = bits.rice(fs)?;
                last = last.wrapping_add(unzigzag(diff)) & mask;
                out.push(convert(last));
            }
        }
        i = end;
    }
    Ok(())
}

#[inline]
fn unzigzag(d: u32) -> u32 {
    if d & 1 == 0 { d >> 1 } else { !(d >> 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert!(decode(&[], 10, 2, 32, &mut out).is_err());
        assert!(decode(&[0, 1], 10, 2, 32, &mut out).is_err());
        assert!(decode(&[0, 1, 0xff, 0xff], 100, 2, 32, &mut out).is_err());
        assert!(decode(&[0, 1, 2, 3], 10, 3, 32, &mut out).is_err());
    }

    #[test]
    fn low_entropy_block_repeats_the_first_pixel() {
        // First pixel 0x0102, then a block code 0 (fs = -1): all differences zero.
        let mut out = Vec::new();
        decode(&[0x01, 0x02, 0x00], 5, 2, 32, &mut out).unwrap();
        assert_eq!(out, vec![0x0102; 5]);
    }
}

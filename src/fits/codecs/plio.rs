//! PLIO_1: IRAF pixel-list ("line list") encoding of non-negative integer images (Tody,
//! IRAF PLIO). A list of 16-bit words: a header, then instructions, opcode in the top 4 bits
//! and a 12-bit operand. The header is either the old 3-word form (third word: the list
//! length) or the current 7-word form (second word: header length; third: a negative version
//! code; fourth and fifth: the list length, low 15 bits then high):
//!
//! | opcode | meaning |
//! | --- | --- |
//! | 0 ZN | `n` zero pixels |
//! | 1 SH | set the high value: `pv = (next word << 12) + n` |
//! | 2 IH / 3 DH | `pv += n` / `pv -= n` |
//! | 4 HN | `n` pixels of value `pv` |
//! | 5 PN | `n − 1` zero pixels then one of value `pv` |
//! | 6 IS / 7 DS | `pv += n` / `pv -= n`, then one pixel of value `pv` |

use super::CodecResult;

/// Decodes `npix` pixels from the big-endian 16-bit words of a line list.
pub fn decode(bytes: &[u8], npix: usize) -> CodecResult<Vec<i32>> {
    let words: Vec<i32> = bytes
        .chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]) as i32)
        .collect();
    if words.len() < 3 {
        return Err("PLIO_1 tile shorter than its header".into());
    }
    let (len, first) = if words[2] > 0 {
        (words[2] as i64, 3usize)
    } else {
        if words.len() < 5 {
            return Err("PLIO_1 tile shorter than its header".into());
        }
        let len = ((words[4] as i64) << 15) + (words[3] as i64 & 0x7FFF);
        (len, words[1].max(0) as usize)
    };
    let mut out: Vec<i32> = Vec::with_capacity(npix);
    if len <= 0 || npix == 0 {
        out.resize(npix, 0);
        return Ok(out);
    }
    let len = (len as usize).min(words.len());
    let mut pv: i32 = 1;
    let mut i = first;
    while i < len && out.len() < npix {
        let w = words[i];
        let opcode = (w >> 12) & 0xF;
        let data = w & 0xFFF;
        match opcode {
            0 | 4 | 5 => {
                let n = (data as usize).min(npix - out.len());
                match opcode {
                    4 => out.extend(std::iter::repeat_n(pv, n)),
                    0 => out.extend(std::iter::repeat_n(0, n)),
                    _ => {
                        if n > 0 {
                            out.extend(std::iter::repeat_n(0, n - 1));
                            // The final pixel is pv only when the whole run fits.
                            out.push(if n == data as usize { pv } else { 0 });
                        }
                    }
                }
            }
            1 => {
                let next = *words
                    .get(i + 1)
                    .ok_or("PLIO_1: SH instruction at the end of the list")?;
                pv = (next << 12).wrapping_add(data);
                i += 1;
            }
            2 => pv = pv.wrapping_add(data),
            3 => pv = pv.wrapping_sub(data),
            6 | 7 => {
                pv = if opcode == 6 {
                    pv.wrapping_add(data)
                } else {
                    pv.wrapping_sub(data)
                };
                out.push(pv);
            }
            _ => return Err(crate::fits::malformed!("PLIO_1: unknown opcode {opcode}")),
        }
        i += 1;
    }
    out.resize(npix, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[i16]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn runs_and_values() {
        // header(3), SH pv = 5, HN 3, ZN 2, IS +2 -> 7
        let ll = words(&[0, 0, 8, 0x1005, 0, 0x4003, 0x0002, 0x6002]);
        assert_eq!(decode(&ll, 7).unwrap(), vec![5, 5, 5, 0, 0, 7, 0]);
        // The same list with the 7-word header of current IRAF/cfitsio writers.
        let ll = words(&[0, 7, -100, 12, 0, 0, 0, 0x1005, 0, 0x4003, 0x0002, 0x6002]);
        assert_eq!(decode(&ll, 7).unwrap(), vec![5, 5, 5, 0, 0, 7, 0]);
        assert!(decode(&words(&[0, 0]), 4).is_err());
        assert!(decode(&words(&[0, 0, 4, 0x1001]), 4).is_err());
    }
}

//! HCOMPRESS_1 (White 1992, "High-performance compression of astronomical images"): the image
//! is H-transformed (a 2-D Haar-like wavelet), the coefficients optionally divided by a scale
//! factor, and their bit planes quadtree-coded per quadrant with a fixed Huffman code for the
//! 4-bit quadtree nodes. Decoding undoes each step; with `smooth`, coefficients are nudged
//! toward interpolated values during the inverse transform (lossy files only).
//!
//! The stream: magic `DD 99`, rows, columns, scale (big-endian i32), the sum of all pixels
//! (i64), the number of bit planes in the three quadrant groups, the quadtree-coded planes,
//! a zero nybble, then (byte-aligned) one sign bit per non-zero coefficient.
//!
//! Arithmetic is done in i64 throughout; for the 8/16/32-bit images HCOMPRESS stores, this
//! gives exactly the integers of the reference decoder.

use super::CodecResult;

/// MSB-first bit input with the byte re-alignment the format needs. Reads past the end give
/// zeros (as a bounded, detectable overrun) rather than undefined data.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    left: u32,
    overrun: usize,
}

impl<'a> Bits<'a> {
    fn byte(&mut self) -> u32 {
        let b = match self.data.get(self.pos) {
            Some(b) => *b as u32,
            None => {
                self.overrun += 1;
                0
            }
        };
        self.pos += 1;
        b
    }
    fn align(&mut self) {
        self.left = 0;
    }
    fn bit(&mut self) -> u32 {
        if self.left == 0 {
            self.buf = self.byte();
            self.left = 8;
        }
        self.left -= 1;
        (self.buf >> self.left) & 1
    }
    fn bits(&mut self, n: u32) -> u32 {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit();
        }
        v
    }
    fn nybble(&mut self) -> u8 {
        self.bits(4) as u8
    }
    /// The fixed Huffman code of quadtree nodes.
    fn huffman(&mut self) -> u8 {
        let c = self.bits(3);
        if c < 4 {
            return 1 << c;
        }
        let c = (c << 1) | self.bit();
        match c {
            8 => return 3,
            9 => return 5,
            10 => return 10,
            11 => return 12,
            12 => return 15,
            _ => {}
        }
        let c = (c << 1) | self.bit();
        match c {
            26 => return 6,
            27 => return 7,
            28 => return 9,
            29 => return 11,
            30 => return 13,
            _ => {}
        }
        let c = (c << 1) | self.bit();
        if c == 62 { 0 } else { 14 }
    }
}

fn ceil_log2(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// Decodes a tile; returns (rows, columns, pixels row-major). `expect` is the tile shape the
/// table promises (rows, columns); a stream claiming another is refused.
pub fn decode(
    input: &[u8],
    smooth: bool,
    expect: (usize, usize),
) -> CodecResult<(usize, usize, Vec<i64>)> {
    if input.len() < 25 || input[0] != 0xDD || input[1] != 0x99 {
        return Err("HCOMPRESS_1: bad magic number".into());
    }
    let be32 = |o: usize| i32::from_be_bytes([input[o], input[o + 1], input[o + 2], input[o + 3]]);
    let (nx, ny, scale) = (be32(2), be32(6), be32(10));
    let sumall = i64::from_be_bytes(input[14..22].try_into().map_err(|_| "short header")?);
    let planes = [input[22], input[23], input[24]];
    if nx <= 0 || ny <= 0 || (nx as usize, ny as usize) != expect {
        return Err(crate::fits::malformed!(
            "HCOMPRESS_1: stream is {nx}x{ny}, the tile is {}x{}",
            expect.0,
            expect.1
        ));
    }
    if planes.iter().any(|&p| p > 64) {
        return Err("HCOMPRESS_1: more than 64 bit planes".into());
    }
    let (nx, ny) = (nx as usize, ny as usize);
    let mut a = vec![0i64; nx * ny];
    let mut bits = Bits {
        data: &input[25..],
        pos: 0,
        buf: 0,
        left: 0,
        overrun: 0,
    };
    let (nx2, ny2) = (nx.div_ceil(2), ny.div_ceil(2));
    qtree_decode(&mut bits, &mut a, 0, ny, nx2, ny2, planes[0])?;
    qtree_decode(&mut bits, &mut a, ny2, ny, nx2, ny / 2, planes[1])?;
    qtree_decode(&mut bits, &mut a, ny * nx2, ny, nx / 2, ny2, planes[1])?;
    qtree_decode(
        &mut bits,
        &mut a,
        ny * nx2 + ny2,
        ny,
        nx / 2,
        ny / 2,
        planes[2],
    )?;
    if bits.nybble() != 0 {
        return Err("HCOMPRESS_1: bad bit plane values (no end code)".into());
    }
    bits.align();
    for v in a.iter_mut() {
        if *v != 0 && bits.bit() == 1 {
            *v = -*v;
        }
    }
    if bits.overrun > 4 {
        return Err("HCOMPRESS_1: compressed data ends early".into());
    }
    a[0] = sumall;
    if scale > 1 {
        let s = scale as i64;
        for v in a.iter_mut() {
            *v = v.wrapping_mul(s);
        }
    }
    hinv(&mut a, nx, ny, smooth, scale as i64);
    Ok((nx, ny, a))
}

/// Decodes the bit planes of one quadrant (nqx rows × nqy columns at `base`, row stride `n`).
fn qtree_decode(
    bits: &mut Bits,
    a: &mut [i64],
    base: usize,
    n: usize,
    nqx: usize,
    nqy: usize,
    nbitplanes: u8,
) -> CodecResult<()> {
    if nbitplanes == 0 {
        return Ok(());
    }
    if nqx == 0 || nqy == 0 {
        return Err("HCOMPRESS_1: bit planes for an empty quadrant".into());
    }
    let log2n = ceil_log2(nqx.max(nqy));
    let (nqx2, nqy2) = (nqx.div_ceil(2), nqy.div_ceil(2));
    let mut scratch = vec![0u8; nqx2 * nqy2];
    for bit in (0..nbitplanes as u32).rev() {
        match bits.nybble() {
            0 => {
                for s in scratch.iter_mut() {
                    *s = bits.nybble();
                }
            }
            0xF => {
                scratch[0] = bits.huffman();
                let (mut nx, mut ny, mut nfx, mut nfy) = (1usize, 1usize, nqx, nqy);
                let mut c = 1usize << log2n;
                for _ in 1..log2n {
                    c >>= 1;
                    nx <<= 1;
                    ny <<= 1;
                    if nfx <= c {
                        nx -= 1
                    } else {
                        nfx -= c
                    }
                    if nfy <= c {
                        ny -= 1
                    } else {
                        nfy -= c
                    }
                    qtree_expand(bits, &mut scratch, nx, ny);
                }
            }
            _ => return Err("HCOMPRESS_1: bad quadtree format code".into()),
        }
        bitins(&scratch, nqx, nqy, a, base, n, bit);
    }
    Ok(())
}

/// Expands the 4-bit codes of scratch[(nx+1)/2][(ny+1)/2] into scratch[nx][ny] (one bit per
/// cell) and reads a new code for each non-zero cell.
fn qtree_expand(bits: &mut Bits, s: &mut [u8], nx: usize, ny: usize) {
    let (nx2, ny2) = (nx.div_ceil(2), ny.div_ceil(2));
    // Spread the codes to the even cells, back to front (source and target overlap).
    for i in (0..nx2).rev() {
        for j in (0..ny2).rev() {
            s[2 * (ny * i + j)] = s[ny2 * i + j];
        }
    }
    for i in (0..nx).step_by(2) {
        for j in (0..ny).step_by(2) {
            let v = s[ny * i + j];
            s[ny * i + j] = (v >> 3) & 1;
            if j + 1 < ny {
                s[ny * i + j + 1] = (v >> 2) & 1;
            }
            if i + 1 < nx {
                s[ny * (i + 1) + j] = (v >> 1) & 1;
                if j + 1 < ny {
                    s[ny * (i + 1) + j + 1] = v & 1;
                }
            }
        }
    }
    for i in (0..nx * ny).rev() {
        if s[i] != 0 {
            s[i] = bits.huffman();
        }
    }
}

/// Inserts bit `bit` into a[nx][ny] (at `base`, stride `n`) from the 4-bit codes of
/// s[(nx+1)/2][(ny+1)/2], each code covering a 2 × 2 block.
fn bitins(s: &[u8], nx: usize, ny: usize, a: &mut [i64], base: usize, n: usize, bit: u32) {
    let plane = 1i64 << bit;
    let mut k = 0;
    for i in (0..nx).step_by(2) {
        for j in (0..ny).step_by(2) {
            let v = s[k];
            k += 1;
            let s00 = base + n * i + j;
            if v & 8 != 0 {
                a[s00] |= plane;
            }
            if j + 1 < ny && v & 4 != 0 {
                a[s00 + 1] |= plane;
            }
            if i + 1 < nx {
                if v & 2 != 0 {
                    a[s00 + n] |= plane;
                }
                if j + 1 < ny && v & 1 != 0 {
                    a[s00 + n + 1] |= plane;
                }
            }
        }
    }
}

/// Moves the first half of the `n` elements (stride `step`, from `start`) to the even
/// positions and the second half to the odd ones.
fn unshuffle(a: &mut [i64], start: usize, n: usize, step: usize, tmp: &mut Vec<i64>) {
    let nhalf = n.div_ceil(2);
    tmp.clear();
    tmp.extend((nhalf..n).map(|i| a[start + i * step]));
    for i in (0..nhalf).rev() {
        a[start + 2 * i * step] = a[start + i * step];
    }
    for (k, i) in (1..n).step_by(2).enumerate() {
        a[start + i * step] = tmp[k];
    }
}

/// The inverse H-transform of a[nx][ny], in place.
fn hinv(a: &mut [i64], nx: usize, ny: usize, smooth: bool, scale: i64) {
    let log2n = ceil_log2(nx.max(ny));
    if log2n == 0 {
        return;
    }
    let mut tmp = Vec::with_capacity(nx.max(ny).div_ceil(2));
    let mut shift = 1;
    let mut bit0: i64 = 1 << (log2n - 1);
    let mut bit1 = bit0 << 1;
    let bit2 = bit0 << 2;
    let mut mask0 = -bit0;
    let mut mask1 = mask0 << 1;
    let mask2 = mask0 << 2;
    let mut prnd0 = bit0 >> 1;
    let mut prnd1 = bit1 >> 1;
    let prnd2 = bit2 >> 1;
    let mut nrnd0 = prnd0 - 1;
    let mut nrnd1 = prnd1 - 1;
    let nrnd2 = prnd2 - 1;
    let round = |v: i64, p: i64, m: i64, mask: i64| (v + if v >= 0 { p } else { m }) & mask;
    a[0] = round(a[0], prnd2, nrnd2, mask2);
    let (mut nxtop, mut nytop, mut nxf, mut nyf) = (1usize, 1usize, nx, ny);
    let mut c = 1usize << log2n;
    for k in (0..log2n).rev() {
        c >>= 1;
        nxtop <<= 1;
        nytop <<= 1;
        if nxf <= c {
            nxtop -= 1
        } else {
            nxf -= c
        }
        if nyf <= c {
            nytop -= 1
        } else {
            nyf -= c
        }
        if k == 0 {
            nrnd0 = 0;
            shift = 2;
        }
        for i in 0..nxtop {
            unshuffle(a, ny * i, nytop, 1, &mut tmp);
        }
        for j in 0..nytop {
            unshuffle(a, j, nxtop, ny, &mut tmp);
        }
        if smooth {
            hsmooth(a, nxtop, nytop, ny, scale);
        }
        let (oddx, oddy) = (nxtop % 2, nytop % 2);
        let mut i = 0;
        while i < nxtop - oddx {
            let mut s00 = ny * i;
            let mut s10 = s00 + ny;
            let mut j = 0;
            while j < nytop - oddy {
                let mut h0 = a[s00];
                let mut hx = round(a[s10], prnd1, nrnd1, mask1);
                let mut hy = round(a[s00 + 1], prnd1, nrnd1, mask1);
                let hc = round(a[s10 + 1], prnd0, nrnd0, mask0);
                let lowbit0 = hc & bit0;
                hx = if hx >= 0 { hx - lowbit0 } else { hx + lowbit0 };
                hy = if hy >= 0 { hy - lowbit0 } else { hy + lowbit0 };
                let lowbit1 = (hc ^ hx ^ hy) & bit1;
                h0 = if h0 >= 0 {
                    h0 + lowbit0 - lowbit1
                } else if lowbit0 == 0 {
                    h0 + lowbit1
                } else {
                    h0 + (lowbit0 - lowbit1)
                };
                // Wrapping: valid data never overflows, corrupt data must not panic.
                a[s10 + 1] = h0.wrapping_add(hx).wrapping_add(hy).wrapping_add(hc) >> shift;
                a[s10] = h0.wrapping_add(hx).wrapping_sub(hy).wrapping_sub(hc) >> shift;
                a[s00 + 1] = h0.wrapping_sub(hx).wrapping_add(hy).wrapping_sub(hc) >> shift;
                a[s00] = h0.wrapping_sub(hx).wrapping_sub(hy).wrapping_add(hc) >> shift;
                s00 += 2;
                s10 += 2;
                j += 2;
            }
            if oddy == 1 {
                let mut h0 = a[s00];
                let hx = round(a[s10], prnd1, nrnd1, mask1);
                let lowbit1 = hx & bit1;
                h0 = if h0 >= 0 { h0 - lowbit1 } else { h0 + lowbit1 };
                a[s10] = (h0 + hx) >> shift;
                a[s00] = (h0 - hx) >> shift;
            }
            i += 2;
        }
        if oddx == 1 {
            let mut s00 = ny * i;
            let mut j = 0;
            while j < nytop - oddy {
                let mut h0 = a[s00];
                let hy = round(a[s00 + 1], prnd1, nrnd1, mask1);
                let lowbit1 = hy & bit1;
                h0 = if h0 >= 0 { h0 - lowbit1 } else { h0 + lowbit1 };
                a[s00 + 1] = (h0 + hy) >> shift;
                a[s00] = (h0 - hy) >> shift;
                s00 += 2;
                j += 2;
            }
            if oddy == 1 {
                a[s00] >>= shift;
            }
        }
        bit1 = bit0;
        bit0 >>= 1;
        mask1 = mask0;
        mask0 >>= 1;
        prnd1 = prnd0;
        prnd0 >>= 1;
        nrnd1 = nrnd0;
        nrnd0 = prnd0 - 1;
    }
}

/// Adjusts the difference coefficients toward values interpolated from the neighbouring
/// zones, within ± scale/2 and keeping the image monotonic where it was.
fn hsmooth(a: &mut [i64], nxtop: usize, nytop: usize, ny: usize, scale: i64) {
    let smax = scale >> 1;
    if smax <= 0 {
        return;
    }
    let ny2 = ny << 1;
    let div = |s: i64, sh: u32| {
        if s >= 0 {
            s >> sh
        } else {
            (s + (1 << sh) - 1) >> sh
        }
    };
    let (nxtop, nytop) = (nxtop as isize, nytop as isize);
    let idx = |v: isize| v as usize;
    // x differences
    let mut i = 2;
    while i < nxtop - 2 {
        let mut s00 = ny as isize * i;
        let mut s10 = s00 + ny as isize;
        let mut j = 0;
        while j < nytop {
            let hm = a[idx(s00 - ny2 as isize)];
            let h0 = a[idx(s00)];
            let hp = a[idx(s00 + ny2 as isize)];
            let diff = hp - hm;
            let dmax = ((hp - h0).min(h0 - hm)).max(0) << 2;
            let dmin = ((hp - h0).max(h0 - hm)).min(0) << 2;
            if dmin < dmax {
                let d = diff.min(dmax).max(dmin);
                let s = div(d - (a[idx(s10)] << 3), 3).clamp(-smax, smax);
                a[idx(s10)] += s;
            }
            s00 += 2;
            s10 += 2;
            j += 2;
        }
        i += 2;
    }
    // y differences
    let mut i = 0;
    while i < nxtop {
        let mut s00 = ny as isize * i + 2;
        let mut j = 2;
        while j < nytop - 2 {
            let hm = a[idx(s00 - 2)];
            let h0 = a[idx(s00)];
            let hp = a[idx(s00 + 2)];
            let diff = hp - hm;
            let dmax = ((hp - h0).min(h0 - hm)).max(0) << 2;
            let dmin = ((hp - h0).max(h0 - hm)).min(0) << 2;
            if dmin < dmax {
                let d = diff.min(dmax).max(dmin);
                let s = div(d - (a[idx(s00 + 1)] << 3), 3).clamp(-smax, smax);
                a[idx(s00 + 1)] += s;
            }
            s00 += 2;
            j += 2;
        }
        i += 2;
    }
    // curvature
    let mut i = 2;
    while i < nxtop - 2 {
        let mut s00 = ny as isize * i + 2;
        let mut s10 = s00 + ny as isize;
        let mut j = 2;
        while j < nytop - 2 {
            let n2 = ny2 as isize;
            let hmm = a[idx(s00 - n2 - 2)];
            let hpm = a[idx(s00 + n2 - 2)];
            let hmp = a[idx(s00 - n2 + 2)];
            let hpp = a[idx(s00 + n2 + 2)];
            let h0 = a[idx(s00)];
            let diff = hpp + hmm - hmp - hpm;
            let hx2 = a[idx(s10)] << 1;
            let hy2 = a[idx(s00 + 1)] << 1;
            let m1 = ((hpp - h0).max(0) - hx2 - hy2).min((h0 - hpm).max(0) + hx2 - hy2);
            let m2 = ((h0 - hmp).max(0) - hx2 + hy2).min((hmm - h0).max(0) + hx2 + hy2);
            let dmax = m1.min(m2) << 4;
            let m1 = ((hpp - h0).min(0) - hx2 - hy2).max((h0 - hpm).min(0) + hx2 - hy2);
            let m2 = ((h0 - hmp).min(0) - hx2 + hy2).max((hmm - h0).min(0) + hx2 + hy2);
            let dmin = m1.max(m2) << 4;
            if dmin < dmax {
                let d = diff.min(dmax).max(dmin);
                let s = div(d - (a[idx(s10 + 1)] << 6), 6).clamp(-smax, smax);
                a[idx(s10 + 1)] += s;
            }
            s00 += 2;
            s10 += 2;
            j += 2;
        }
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_streams_are_errors() {
        assert!(decode(&[], false, (4, 4)).is_err());
        let mut h = vec![0xDD, 0x99];
        h.extend(4i32.to_be_bytes());
        h.extend(4i32.to_be_bytes());
        h.extend(0i32.to_be_bytes());
        h.extend(0i64.to_be_bytes());
        h.extend([0, 0, 0]);
        // No planes, then the end nybble 0: an all-zero 4x4 tile whose sum is 0.
        h.push(0);
        let (nx, ny, a) = decode(&h, false, (4, 4)).unwrap();
        assert_eq!((nx, ny), (4, 4));
        assert!(a.iter().all(|v| *v == 0));
        assert!(
            decode(&h, false, (4, 5)).is_err(),
            "shape must match the tile"
        );
    }
}

//! Tile codecs of the FITS tiled-image convention (Pence, White & Seaman; FITS 4.0 §10),
//! written here because fitsrs 0.4 mis-decodes 16- and 8-bit tiles and lacks HCOMPRESS and
//! PLIO: [`rice`] (RICE_1), [`gzip`] (GZIP_1, GZIP_2), [`hcompress`] (HCOMPRESS_1, White
//! 1992), [`plio`] (PLIO_1, IRAF pixel lists). Each decodes one tile's bytes into integers
//! (or raw IEEE bytes for lossless floats) and fails with a message, never a panic, on bad
//! input.

pub mod gzip;
pub mod hcompress;
pub mod plio;
pub mod rice;

/// A codec failure; the caller adds the file, HDU and tile.
pub type CodecResult<T> = Result<T, crate::fits::Malformed>;

/// Reads bits most-significant first.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            nbits: 0,
        }
    }

    /// Tops the buffer up to at least 57 bits (fewer only at the end of the data). With eight
    /// bytes left it loads a whole word: the bits below `nbits` after the top-up are the
    /// stream's own next bits, so a later refill ORs identical values over them.
    #[inline]
    fn refill(&mut self) {
        if self.nbits > 56 {
            return;
        }
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(word.try_into().expect("eight bytes"));
            self.buf |= word >> self.nbits;
            let bytes = (63 - self.nbits) / 8;
            self.pos += bytes as usize;
            self.nbits += bytes * 8;
            return;
        }
        while self.nbits <= 56 && self.pos < self.data.len() {
            self.buf |= (self.data[self.pos] as u64) << (56 - self.nbits);
            self.pos += 1;
            self.nbits += 8;
        }
    }

    /// Reads one Golomb–Rice value: a unary count of zeros `q`, then `fs` ≤ 32 low bits;
    /// returns `q << fs | low` (0 when the count exceeds 32 bits, as corrupt data may).
    #[inline]
    pub(crate) fn rice(&mut self, fs: u32) -> CodecResult<u32> {
        self.refill();
        let lz = self.buf.leading_zeros();
        // Fast path: the whole code is in the buffer (lz + 1 + fs ≤ nbits ≤ 64, so lz < 64).
        if lz + 1 + fs <= self.nbits {
            let rest = (self.buf << lz) << 1;
            let low = if fs == 0 {
                0
            } else {
                (rest >> (64 - fs)) as u32
            };
            self.buf = if fs == 0 { rest } else { rest << fs };
            self.nbits -= lz + 1 + fs;
            return Ok(lz.checked_shl(fs).unwrap_or(0) | low);
        }
        let nzero = self.unary()?;
        let low = self.read(fs)?;
        Ok(nzero.checked_shl(fs).unwrap_or(0) | low)
    }

    /// Reads `n` ≤ 32 bits.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> CodecResult<u32> {
        if n == 0 {
            return Ok(0);
        }
        if self.nbits < n {
            self.refill();
            if self.nbits < n {
                return Err("compressed data ends early".into());
            }
        }
        let v = (self.buf >> (64 - n)) as u32;
        self.buf <<= n;
        self.nbits -= n;
        Ok(v)
    }

    /// Counts zero bits up to and including the next one bit; returns the number of zeros.
    #[inline]
    pub(crate) fn unary(&mut self) -> CodecResult<u32> {
        let mut zeros = 0u32;
        loop {
            if self.nbits == 0 {
                self.refill();
                if self.nbits == 0 {
                    return Err("compressed data ends early".into());
                }
            }
            let lz = self.buf.leading_zeros();
            if lz < self.nbits {
                zeros += lz;
                // lz + 1 reaches 64 when the one bit is the buffer's last: the buffer is then
                // empty (a plain `<<` would overflow, and in release shift by 0).
                self.buf = self.buf.checked_shl(lz + 1).unwrap_or(0);
                self.nbits -= lz + 1;
                return Ok(zeros);
            }
            zeros += self.nbits;
            self.buf = 0;
            self.nbits = 0;
            if zeros > 1 << 20 {
                return Err("corrupt compressed data (endless zero run)".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BitReader;

    /// A unary code whose terminating one bit is the 64th bit of the refilled buffer (found by
    /// the fuzzer: the shift by 64 overflowed, and in release left the bit in place).
    #[test]
    fn unary_code_ending_on_the_buffers_last_bit() {
        // 63 zeros, a one, then the code "1" (zero zeros) in the next byte.
        let mut data = vec![0u8; 7];
        data.push(0b0000_0001);
        data.push(0b1000_0000);
        let mut r = BitReader::new(&data);
        assert_eq!(r.unary().unwrap(), 63);
        assert_eq!(r.unary().unwrap(), 0);
    }
}

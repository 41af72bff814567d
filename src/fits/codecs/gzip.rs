//! GZIP_1 (the tile's big-endian pixel bytes, gzip-compressed) and GZIP_2 (the same bytes
//! shuffled: all most-significant bytes first, then the next, ... which compresses better).

use super::CodecResult;
use std::io::Read;

/// Inflates a gzip (or zlib/raw deflate as some writers produce) stream, refusing to produce
/// more than `expected` bytes.
pub fn inflate(input: &[u8], expected: usize) -> CodecResult<Vec<u8>> {
    let mut out = Vec::with_capacity(expected);
    let limit = expected as u64 + 1;
    let r = if input.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(input)
            .take(limit)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(input)
            .take(limit)
            .read_to_end(&mut out)
    };
    r.map_err(|e| crate::fits::malformed!("gzip tile: {e}"))?;
    if out.len() != expected {
        return Err(crate::fits::malformed!(
            "gzip tile holds {} bytes, expected {expected}",
            out.len()
        ));
    }
    Ok(out)
}

/// Inflates a stream of at most `limit` bytes.
pub fn inflate_at_most(input: &[u8], limit: usize) -> CodecResult<Vec<u8>> {
    let mut out = Vec::new();
    let cap = limit as u64 + 1;
    let r = if input.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(input)
            .take(cap)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(input)
            .take(cap)
            .read_to_end(&mut out)
    };
    r.map_err(|e| crate::fits::malformed!("gzip tile: {e}"))?;
    if out.len() > limit {
        return Err(crate::fits::malformed!(
            "gzip tile inflates beyond {limit} bytes"
        ));
    }
    Ok(out)
}

/// Undoes the GZIP_2 byte shuffle for `width`-byte values.
pub fn unshuffle(bytes: &[u8], width: usize) -> Vec<u8> {
    if width <= 1 {
        return bytes.to_vec();
    }
    let n = bytes.len() / width;
    let mut out = vec![0u8; n * width];
    for b in 0..width {
        let plane = &bytes[b * n..(b + 1) * n];
        for (i, &v) in plane.iter().enumerate() {
            out[i * width + b] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trip() {
        // Values 0x0102, 0x0304 shuffled: MSBs [01, 03] then LSBs [02, 04].
        assert_eq!(unshuffle(&[1, 3, 2, 4], 2), vec![1, 2, 3, 4]);
    }

    #[test]
    fn inflate_checks_the_size() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[7u8; 100]).unwrap();
        let z = e.finish().unwrap();
        assert_eq!(inflate(&z, 100).unwrap(), vec![7u8; 100]);
        assert!(inflate(&z, 50).is_err());
        assert!(inflate(&[1, 2, 3], 10).is_err());
    }
}

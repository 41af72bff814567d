//! CHECKSUM and DATASUM (the FITS checksum convention, Seaman et al. 2002; FITS 4.0 §J):
//! 32-bit ones'-complement sums of the big-endian words of the data unit (DATASUM, as an
//! unsigned decimal string) and of the whole HDU (CHECKSUM, encoded so the HDU sums to −0).

use super::file::{FitsFile, Hdu};
use serde::Serialize;

/// The verdict on one HDU's checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumStatus {
    /// Neither keyword is present.
    Absent,
    /// Every keyword present verifies.
    Ok,
    /// DATASUM does not match the data.
    DatasumMismatch,
    /// CHECKSUM does not make the HDU sum to −0.
    ChecksumMismatch,
}

impl ChecksumStatus {
    pub fn is_mismatch(self) -> bool {
        matches!(
            self,
            ChecksumStatus::DatasumMismatch | ChecksumStatus::ChecksumMismatch
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumStatus::Absent => "absent",
            ChecksumStatus::Ok => "ok",
            ChecksumStatus::DatasumMismatch => "datasum_mismatch",
            ChecksumStatus::ChecksumMismatch => "checksum_mismatch",
        }
    }
}

/// Ones'-complement sum of big-endian 32-bit words, continuing from `sum`. `bytes` is
/// zero-padded to a multiple of 4.
pub fn ones_complement_sum(bytes: &[u8], sum: u32) -> u32 {
    let mut acc = sum as u64;
    let chunks = bytes.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
        if acc > u32::MAX as u64 * 1024 {
            acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        }
    }
    if !rest.is_empty() {
        let mut w = [0u8; 4];
        w[..rest.len()].copy_from_slice(rest);
        acc += u32::from_be_bytes(w) as u64;
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    }
    acc as u32
}

impl FitsFile {
    /// Verifies the CHECKSUM and DATASUM keywords of an HDU, when present.
    pub fn verify_checksum(&self, hdu: &Hdu) -> ChecksumStatus {
        let has_checksum = hdu.header.str("CHECKSUM").is_some();
        let datasum_kw = hdu.header.str("DATASUM").map(|s| s.trim().to_string());
        if !has_checksum && datasum_kw.is_none() {
            return ChecksumStatus::Absent;
        }
        let start = hdu.data_offset as usize;
        let padded = (hdu.data_len as usize).div_ceil(2880) * 2880;
        let end = (start + padded).min(self.bytes.len());
        // Missing padding bytes count as zeros.
        let datasum = ones_complement_sum(&self.bytes[start..end], 0);
        if let Some(ds) = &datasum_kw
            && let Ok(v) = ds.parse::<u64>()
            && v != datasum as u64
        {
            return ChecksumStatus::DatasumMismatch;
        }
        if has_checksum {
            let hs = hdu.header_offset as usize;
            let total = ones_complement_sum(&self.bytes[hs.min(start)..start], datasum);
            if total != 0xFFFF_FFFF && total != 0 {
                return ChecksumStatus::ChecksumMismatch;
            }
        }
        ChecksumStatus::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ones_complement_wraps_the_carry() {
        assert_eq!(
            ones_complement_sum(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2], 0),
            2
        );
        assert_eq!(ones_complement_sum(&[0, 0, 0, 1], 5), 6);
    }
}

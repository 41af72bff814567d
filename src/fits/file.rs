//! Opening a FITS file: the bytes (gunzipped when the file is gzip), and its HDUs as fitsrs
//! iterates them (header, data offset, data size), checked against the real file size.

use super::header::Header;
use super::limits::FitsLimits;
use super::{FitsError, Result};
use std::io::{Cursor, Read};
use std::path::Path;

/// What an HDU holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HduKind {
    /// The primary HDU (an image array, possibly empty).
    Primary,
    /// An IMAGE extension.
    Image,
    /// A BINTABLE extension holding a tile-compressed image (ZIMAGE = T).
    CompressedImage,
    BinTable,
    AsciiTable,
}

impl HduKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            HduKind::Primary => "PRIMARY",
            HduKind::Image => "IMAGE",
            HduKind::CompressedImage => "COMPRESSED_IMAGE",
            HduKind::BinTable => "BINTABLE",
            HduKind::AsciiTable => "TABLE",
        }
    }
}

/// One header-data unit.
#[derive(Debug, Clone)]
pub struct Hdu {
    /// 0-based position in the file (0 = primary).
    pub index: usize,
    pub kind: HduKind,
    pub header: Header,
    /// Byte offset of the data unit in the (decompressed) file.
    pub data_offset: u64,
    /// Size in bytes of the data unit as the header declares it (without padding).
    pub data_len: u64,
    /// Byte offset of the header (the end of the previous HDU, padded to 2880 bytes).
    pub header_offset: u64,
}

/// A FITS file read into memory.
#[derive(Debug)]
pub struct FitsFile {
    /// The name the file was opened by, used in every error message.
    pub path: String,
    pub bytes: Vec<u8>,
    pub hdus: Vec<Hdu>,
    /// A problem found after the last good HDU (bad header, truncation): the HDUs before it
    /// are still usable.
    pub trailing_error: Option<FitsError>,
    /// What the file may claim (checked before pixels are allocated).
    pub limits: FitsLimits,
}

impl FitsFile {
    /// Reads `path` (gunzipping `.gz` or any gzip-magic file) and lists its HDUs.
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let raw = crate::fits::image::read_file(path).map_err(|source| FitsError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_bytes(name, raw)
    }

    /// Parses an in-memory file (gzip is detected by its magic bytes) with the default limits.
    pub fn from_bytes(path: String, raw: Vec<u8>) -> Result<Self> {
        Self::from_bytes_with(path, raw, FitsLimits::default())
    }

    /// Parses an in-memory file under `limits`: a gzip stream is inflated no further than
    /// its headers claim (each claim checked first), headers longer than allowed are refused.
    pub fn from_bytes_with(path: String, raw: Vec<u8>, limits: FitsLimits) -> Result<Self> {
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            gunzip(&path, &raw, &limits)?
        } else {
            raw
        };
        if !bytes.starts_with(b"SIMPLE  =") {
            return Err(FitsError::NotFits { path });
        }
        let (hdus, trailing_error) =
            list_hdus(&path, Cursor::new(bytes.as_slice()), bytes.len() as u64);
        if hdus.is_empty() {
            return Err(trailing_error.unwrap_or(FitsError::NotFits { path }));
        }
        if let Some(h) = hdus
            .iter()
            .find(|h| h.header.cards().len() > limits.max_header_cards)
        {
            return Err(FitsError::Limit {
                path,
                hdu: h.index,
                what: format!(
                    "the header has {} cards; at most {} are accepted (--max-header-cards)",
                    h.header.cards().len(),
                    limits.max_header_cards
                ),
            });
        }
        Ok(FitsFile {
            path,
            bytes,
            hdus,
            trailing_error,
            limits,
        })
    }

    /// Refuses an image of `pixels` pixels beyond the pixel cap, before it is allocated.
    pub fn check_pixels(&self, hdu: &Hdu, pixels: u64) -> Result<()> {
        if pixels > self.limits.max_pixels {
            return Err(FitsError::Limit {
                path: self.path.clone(),
                hdu: hdu.index,
                what: format!(
                    "the header claims {pixels} pixels; at most {} are accepted (--max-image-pixels)",
                    self.limits.max_pixels
                ),
            });
        }
        Ok(())
    }

    pub fn hdu(&self, index: usize) -> Result<&Hdu> {
        self.hdus.get(index).ok_or_else(|| FitsError::NoSuchHdu {
            path: self.path.clone(),
            hdu: index,
            count: self.hdus.len(),
        })
    }

    /// The raw bytes of an HDU's data unit.
    pub fn data(&self, hdu: &Hdu) -> &[u8] {
        let start = hdu.data_offset as usize;
        &self.bytes[start..start + hdu.data_len as usize]
    }
}

/// Inflates a gzip-compressed FITS file no further than its headers claim.
///
/// The stream is read HDU by HDU: header blocks until END (at most the card cap), then
/// exactly the data the header declares (`|BITPIX|/8 × GCOUNT × (PCOUNT + ΠNAXISn)`, padded),
/// each claim checked against the caps before it is read. What follows the last HDU that is
/// not another extension header is left compressed. So a bomb — a small file that inflates
/// to gigabytes — costs no more memory than its headers honestly claim.
fn gunzip(path: &str, raw: &[u8], limits: &FitsLimits) -> Result<Vec<u8>> {
    let gz = |source| FitsError::Gzip {
        path: path.to_string(),
        source,
    };
    let too_large = || FitsError::TooLarge {
        path: path.to_string(),
        limit: limits.max_bytes,
    };
    let mut dec = flate2::read::MultiGzDecoder::new(raw);
    let mut out: Vec<u8> = Vec::with_capacity(raw.len().saturating_mul(2).min(64 << 20));
    // Reads up to `n` more bytes; returns how many came (fewer at the end of the stream).
    let mut fill = |out: &mut Vec<u8>, n: u64| -> Result<u64> {
        let before = out.len();
        (&mut dec).take(n).read_to_end(out).map_err(gz)?;
        Ok((out.len() - before) as u64)
    };
    let mut hdu = 0usize;
    loop {
        let start = out.len();
        // The header: blocks until one holds END.
        let mut cards = 0usize;
        loop {
            if fill(&mut out, 2880)? < 2880 {
                // The end, or a partial block: list_hdus reports what is wrong with it.
                return Ok(out);
            }
            let block = &out[out.len() - 2880..];
            if out.len() - start == 2880 {
                let first = &block[..8];
                let opens = if hdu == 0 {
                    first == b"SIMPLE  "
                } else {
                    first == b"XTENSION"
                };
                if !opens {
                    // Not FITS, or special records after the last HDU: stop here.
                    if hdu > 0 {
                        out.truncate(start);
                    }
                    return Ok(out);
                }
            }
            let end = block
                .chunks(80)
                .any(|c| c.starts_with(b"END") && c[3..].iter().all(|b| *b == b' '));
            cards += 36;
            if cards > limits.max_header_cards + 36 {
                return Err(FitsError::Limit {
                    path: path.to_string(),
                    hdu,
                    what: format!(
                        "the header has more than {} cards (--max-header-cards)",
                        limits.max_header_cards
                    ),
                });
            }
            if end {
                break;
            }
        }
        let header = parse_header_cards(&out[start..]).map_err(|m| FitsError::Header {
            path: path.to_string(),
            hdu,
            message: m.0,
        })?;
        let data = claimed_data_bytes(&header).ok_or_else(|| FitsError::Header {
            path: path.to_string(),
            hdu,
            message: "the data size the header declares overflows".into(),
        })?;
        // An image's pixels are checked before its data are inflated.
        let image = header
            .str("XTENSION")
            .is_none_or(|x| x.trim().eq_ignore_ascii_case("IMAGE"));
        let bytes_per_pixel = header.i64("BITPIX").unwrap_or(8).unsigned_abs() / 8;
        if image && bytes_per_pixel > 0 && data / bytes_per_pixel > limits.max_pixels {
            return Err(FitsError::Limit {
                path: path.to_string(),
                hdu,
                what: format!(
                    "the header claims {} pixels; at most {} are accepted (--max-image-pixels)",
                    data / bytes_per_pixel,
                    limits.max_pixels
                ),
            });
        }
        let padded = data.div_ceil(2880).saturating_mul(2880);
        if (out.len() as u64).saturating_add(padded) > limits.max_bytes {
            return Err(too_large());
        }
        if fill(&mut out, padded)? < padded {
            // Truncated: list_hdus says so with the numbers.
            return Ok(out);
        }
        hdu += 1;
    }
}

/// Bytes of the data unit a header declares: `|BITPIX|/8 × GCOUNT × (PCOUNT + ΠNAXISn)`
/// (FITS 4.0 §4.4.1), or None on overflow.
pub fn claimed_data_bytes(h: &Header) -> Option<u64> {
    let bitpix = h.i64("BITPIX").unwrap_or(8).unsigned_abs() / 8;
    let naxis = h.i64("NAXIS").unwrap_or(0).clamp(0, 999) as usize;
    if naxis == 0 {
        return Some(0);
    }
    let mut n: u64 = 1;
    for i in 1..=naxis {
        let a = h.i64(&format!("NAXIS{i}")).unwrap_or(0).max(0) as u64;
        n = n.checked_mul(a)?;
    }
    let pcount = h.i64("PCOUNT").unwrap_or(0).max(0) as u64;
    let gcount = h.i64("GCOUNT").unwrap_or(1).max(0) as u64;
    bitpix
        .checked_mul(gcount)?
        .checked_mul(n.checked_add(pcount)?)
}

/// Iterates the HDUs with fitsrs. fitsrs does not check that a data unit fits in the file, so
/// each one is checked here; the first failure ends the listing and is returned beside the
/// good HDUs. fitsrs is third-party code fed with untrusted bytes: a panic inside it is caught
/// and reported as a header error rather than taking the process down.
fn list_hdus<R: std::io::Read + std::io::Seek + std::fmt::Debug>(
    path: &str,
    reader: R,
    file_len: u64,
) -> (Vec<Hdu>, Option<FitsError>) {
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out: Vec<std::result::Result<Hdu, super::Malformed>> = Vec::new();
        let fits = fitsrs::Fits::from_reader(reader);
        for (index, next) in fits.enumerate() {
            match next {
                Ok(h) => out.push(Ok(convert(index, &h))),
                Err(e) => {
                    out.push(Err(super::Malformed(e.to_string())));
                    break;
                }
            }
            // A data unit beyond the end of the file: stop before fitsrs seeks past it.
            if let Some(Ok(last)) = out.last()
                && last.data_offset.saturating_add(last.data_len) > file_len
            {
                break;
            }
        }
        out
    }));
    let parsed = match parsed {
        Ok(p) => p,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            return (
                Vec::new(),
                Some(FitsError::Header {
                    path: path.into(),
                    hdu: 0,
                    message: format!("the header parser failed: {msg}"),
                }),
            );
        }
    };
    let mut hdus = Vec::new();
    let mut next_header = 0u64;
    for (i, item) in parsed.into_iter().enumerate() {
        match item {
            Ok(mut h) => {
                h.header_offset = next_header;
                next_header = h
                    .data_offset
                    .saturating_add(h.data_len.div_ceil(2880).saturating_mul(2880));
                let end = h.data_offset.saturating_add(h.data_len);
                if end > file_len {
                    return (
                        hdus,
                        Some(FitsError::Truncated {
                            path: path.into(),
                            hdu: i,
                            offset: h.data_offset,
                            needed: h.data_len,
                            available: file_len.saturating_sub(h.data_offset),
                        }),
                    );
                }
                hdus.push(h);
            }
            Err(message) => {
                return (
                    hdus,
                    Some(FitsError::Header {
                        path: path.into(),
                        hdu: i,
                        message: message.0,
                    }),
                );
            }
        }
    }
    (hdus, None)
}

fn convert(index: usize, h: &fitsrs::HDU) -> Hdu {
    use fitsrs::HDU as F;
    let (kind, header) = match h {
        F::Primary(p) => (
            HduKind::Primary,
            Header::from_fitsrs(p.get_header().cards()),
        ),
        F::XImage(p) => (HduKind::Image, Header::from_fitsrs(p.get_header().cards())),
        F::XBinaryTable(p) => {
            let header = Header::from_fitsrs(p.get_header().cards());
            let kind = if header.bool("ZIMAGE") == Some(true) {
                HduKind::CompressedImage
            } else {
                HduKind::BinTable
            };
            (kind, header)
        }
        F::XASCIITable(p) => (
            HduKind::AsciiTable,
            Header::from_fitsrs(p.get_header().cards()),
        ),
    };
    Hdu {
        index,
        kind,
        header,
        data_offset: h.get_data_unit_byte_offset(),
        data_len: h.get_data_unit_byte_size(),
        header_offset: 0,
    }
}

/// Lists the HDUs of an uncompressed FITS file on disk, reading its headers only; the data
/// stay on disk for [`crate::fits::image::read_plane_from_file`].
pub fn open_headers(path: &Path) -> Result<(Vec<Hdu>, Option<FitsError>)> {
    let name = path.display().to_string();
    let io = |source| FitsError::Io {
        path: name.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut magic = [0u8; 9];
    let n = std::io::Read::read(&mut file, &mut magic).map_err(io)?;
    if n < 9 || &magic != b"SIMPLE  =" {
        return Err(FitsError::NotFits { path: name });
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(io)?;
    let (hdus, err) = list_hdus(&name, std::io::BufReader::with_capacity(1 << 16, file), len);
    if hdus.is_empty() {
        return Err(err.unwrap_or(FitsError::NotFits { path: name }));
    }
    Ok((hdus, err))
}

/// Parses a bare header: 80-character cards without newlines (as FITS stores them), or one
/// card per line; stops at END. Used for `.hdr` files and WCS-only inputs.
pub fn parse_header_cards(bytes: &[u8]) -> std::result::Result<Header, super::Malformed> {
    let lines: Vec<Vec<u8>> = if bytes.contains(&b'\n') {
        bytes
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect()
    } else {
        bytes.chunks(80).map(|c| c.to_vec()).collect()
    };
    let mut cards = Vec::new();
    for line in lines {
        let mut buf = [b' '; 80];
        for (o, b) in buf.iter_mut().zip(line.iter()) {
            *o = *b;
        }
        let card = fitsrs::card::Card::try_from(&buf).unwrap_or_else(|_| {
            fitsrs::card::Card::Undefined(String::from_utf8_lossy(&buf).into_owned())
        });
        if card == fitsrs::card::Card::End {
            break;
        }
        // Splice CONTINUE long strings into the card they continue.
        if let (Some(prev), fitsrs::card::Card::Continuation { .. }) = (cards.last_mut(), &card) {
            let prev: &mut fitsrs::card::Card = prev;
            if prev.continued() {
                prev.append(&card);
                continue;
            }
        }
        cards.push(card);
    }
    if cards.is_empty() {
        return Err("no header cards".into());
    }
    Ok(Header::from_fitsrs(cards.iter()))
}

//! Opening a FITS file: the bytes (gunzipped when the file is gzip), and its HDUs as fitsrs
//! iterates them (header, data offset, data size), checked against the real file size.

use super::header::Header;
use super::{FitsError, Result};
use std::io::{Cursor, Read};
use std::path::Path;

/// Decompressed `.gz` files larger than this are refused (a gzip bomb must not exhaust memory).
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024 * 1024;

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

    /// Parses an in-memory file (gzip is detected by its magic bytes).
    pub fn from_bytes(path: String, raw: Vec<u8>) -> Result<Self> {
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            gunzip(&path, &raw, DEFAULT_MAX_BYTES)?
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
        Ok(FitsFile {
            path,
            bytes,
            hdus,
            trailing_error,
        })
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

fn gunzip(path: &str, raw: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut dec = flate2::read::MultiGzDecoder::new(raw).take(limit + 1);
    dec.read_to_end(&mut out)
        .map_err(|source| FitsError::Gzip {
            path: path.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(FitsError::TooLarge {
            path: path.to_string(),
            limit,
        });
    }
    Ok(out)
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
        let mut out: Vec<std::result::Result<Hdu, String>> = Vec::new();
        let fits = fitsrs::Fits::from_reader(reader);
        for (index, next) in fits.enumerate() {
            match next {
                Ok(h) => out.push(Ok(convert(index, &h))),
                Err(e) => {
                    out.push(Err(e.to_string()));
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
                        message,
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
pub fn parse_header_cards(bytes: &[u8]) -> std::result::Result<Header, String> {
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

//! A small FITS writer: image HDUs (primary and IMAGE extensions) with header cards. fitsrs
//! has no writer; we need one for calibration masters, demo frames and test fixtures.

use super::header::HeaderValue;

const BLOCK: usize = 2880;

/// Pixel encodings the writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// BITPIX -32.
    F32,
    /// BITPIX 16 with BZERO = 32768 (unsigned 16-bit), values rounded and clamped.
    U16,
    /// BITPIX 16, values rounded and clamped.
    I16,
    /// BITPIX -64.
    F64,
}

/// Builds a FITS file HDU by HDU.
#[derive(Debug, Default)]
pub struct FitsWriter {
    out: Vec<u8>,
    hdus: usize,
}

impl FitsWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a 2-D image HDU. `cards` are extra keywords (WCS, DATE-OBS, ...); the
    /// structural ones (SIMPLE/XTENSION, BITPIX, NAXIS*, BZERO/BSCALE, EXTEND, PCOUNT,
    /// GCOUNT) are written here.
    pub fn image(
        &mut self,
        width: usize,
        height: usize,
        pixels: &[f64],
        encoding: Encoding,
        cards: &[(&str, HeaderValue)],
    ) -> &mut Self {
        assert_eq!(pixels.len(), width * height, "pixel count must match shape");
        let mut h: Vec<[u8; 80]> = Vec::new();
        if self.hdus == 0 {
            h.push(card("SIMPLE", &HeaderValue::Bool(true), None));
        } else {
            h.push(card("XTENSION", &HeaderValue::Str("IMAGE".into()), None));
        }
        let bitpix = match encoding {
            Encoding::F32 => -32,
            Encoding::F64 => -64,
            Encoding::U16 | Encoding::I16 => 16,
        };
        h.push(card("BITPIX", &HeaderValue::Int(bitpix), None));
        h.push(card("NAXIS", &HeaderValue::Int(2), None));
        h.push(card("NAXIS1", &HeaderValue::Int(width as i64), None));
        h.push(card("NAXIS2", &HeaderValue::Int(height as i64), None));
        if self.hdus == 0 {
            h.push(card("EXTEND", &HeaderValue::Bool(true), None));
        } else {
            h.push(card("PCOUNT", &HeaderValue::Int(0), None));
            h.push(card("GCOUNT", &HeaderValue::Int(1), None));
        }
        if encoding == Encoding::U16 {
            h.push(card("BZERO", &HeaderValue::Int(32768), None));
            h.push(card("BSCALE", &HeaderValue::Int(1), None));
        }
        self.header(h, cards);
        match encoding {
            Encoding::F32 => {
                for &p in pixels {
                    self.out.extend_from_slice(&(p as f32).to_be_bytes());
                }
            }
            Encoding::F64 => {
                for &p in pixels {
                    self.out.extend_from_slice(&p.to_be_bytes());
                }
            }
            Encoding::U16 => {
                for &p in pixels {
                    let v = p.round().clamp(0.0, 65535.0) as i32 - 32768;
                    self.out.extend_from_slice(&(v as i16).to_be_bytes());
                }
            }
            Encoding::I16 => {
                for &p in pixels {
                    let v = p.round().clamp(-32768.0, 32767.0) as i16;
                    self.out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        pad(&mut self.out, 0);
        self.hdus += 1;
        self
    }

    /// Appends a binary table of one column of 64-bit integers (`TFORM1 = '1K'`) named
    /// `column`, with extra `cards`. As the first HDU it is preceded by an empty primary HDU
    /// (a primary HDU cannot be a table).
    pub fn bintable_i64(
        &mut self,
        column: &str,
        values: &[i64],
        cards: &[(&str, HeaderValue)],
    ) -> &mut Self {
        if self.hdus == 0 {
            for c in [
                card("SIMPLE", &HeaderValue::Bool(true), None),
                card("BITPIX", &HeaderValue::Int(8), None),
                card("NAXIS", &HeaderValue::Int(0), None),
                card("EXTEND", &HeaderValue::Bool(true), None),
                end_card(),
            ] {
                self.out.extend_from_slice(&c);
            }
            pad(&mut self.out, b' ');
            self.hdus += 1;
        }
        let h = vec![
            card("XTENSION", &HeaderValue::Str("BINTABLE".into()), None),
            card("BITPIX", &HeaderValue::Int(8), None),
            card("NAXIS", &HeaderValue::Int(2), None),
            card("NAXIS1", &HeaderValue::Int(8), None),
            card("NAXIS2", &HeaderValue::Int(values.len() as i64), None),
            card("PCOUNT", &HeaderValue::Int(0), None),
            card("GCOUNT", &HeaderValue::Int(1), None),
            card("TFIELDS", &HeaderValue::Int(1), None),
            card("TTYPE1", &HeaderValue::Str(column.into()), None),
            card("TFORM1", &HeaderValue::Str("1K".into()), None),
        ];
        self.header(h, cards);
        for v in values {
            self.out.extend_from_slice(&v.to_be_bytes());
        }
        pad(&mut self.out, 0);
        self.hdus += 1;
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    /// Writes a header: the structural `cards`, then the caller's `extra`, END, padding.
    fn header(&mut self, mut cards: Vec<[u8; 80]>, extra: &[(&str, HeaderValue)]) {
        for (k, v) in extra {
            cards.push(card(k, v, None));
        }
        cards.push(end_card());
        for c in &cards {
            self.out.extend_from_slice(c);
        }
        pad(&mut self.out, b' ');
    }
}

fn pad(out: &mut Vec<u8>, byte: u8) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, byte);
    }
}

fn end_card() -> [u8; 80] {
    let mut c = [b' '; 80];
    c[..3].copy_from_slice(b"END");
    c
}

/// Formats one fixed-format header card.
pub fn card(key: &str, value: &HeaderValue, comment: Option<&str>) -> [u8; 80] {
    let mut s = format!("{:<8}= ", &key[..key.len().min(8)]);
    let v = match value {
        HeaderValue::Bool(b) => format!("{:>20}", if *b { "T" } else { "F" }),
        HeaderValue::Int(i) => format!("{i:>20}"),
        HeaderValue::Float(f) => format!("{:>20}", format_float(*f)),
        HeaderValue::Str(t) => {
            let q = t.replace('\'', "''");
            format!("'{q:<8}'")
        }
        HeaderValue::Undefined => String::new(),
    };
    s.push_str(&v);
    if let Some(c) = comment {
        s.push_str(" / ");
        s.push_str(c);
    }
    let mut out = [b' '; 80];
    for (o, b) in out.iter_mut().zip(s.bytes().filter(|b| b.is_ascii())) {
        *o = b;
    }
    out
}

/// A float in FITS syntax (uppercase exponent, always a decimal point), at most 20 characters.
pub fn format_float(f: f64) -> String {
    let s = format!("{f:?}");
    let s = if s.contains('e') {
        let e = format!("{f:.12E}");
        e.replace("E", "E+").replace("E+-", "E-")
    } else {
        s
    };
    if s.len() > 20 {
        format!("{f:.12E}").replace("E", "E+").replace("E+-", "E-")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fits::FitsFile;

    #[test]
    fn round_trip_through_the_reader() {
        let px: Vec<f64> = (0..12).map(|i| i as f64 * 1.5).collect();
        let mut w = FitsWriter::new();
        w.image(
            4,
            3,
            &px,
            Encoding::F32,
            &[("OBJECT", HeaderValue::Str("M 13".into()))],
        );
        w.image(
            4,
            3,
            &px,
            Encoding::U16,
            &[("CRVAL1", HeaderValue::Float(250.4226))],
        );
        let f = FitsFile::from_bytes("mem".into(), w.finish()).unwrap();
        assert_eq!(f.hdus.len(), 2);
        assert_eq!(f.hdus[0].header.str("OBJECT"), Some("M 13"));
        assert_eq!(f.hdus[1].header.f64("CRVAL1"), Some(250.4226));
        let a = f.read_plane::<f64>(&f.hdus[0], 0).unwrap();
        assert_eq!(a.pixels, px);
        let b = f.read_plane::<f64>(&f.hdus[1], 0).unwrap();
        let rounded: Vec<f64> = px.iter().map(|v| v.round()).collect();
        assert_eq!(b.pixels, rounded);
    }

    #[test]
    fn float_formatting() {
        assert_eq!(format_float(250.4226), "250.4226");
        assert_eq!(format_float(1e-5), "1.000000000000E-5");
        assert!(format_float(-1.2345678901234567e-300).len() <= 20);
    }
}

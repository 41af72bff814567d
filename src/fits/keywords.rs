//! Observation metadata from the usual header keywords (with the primary header as fallback
//! for extensions, as the INHERIT convention and most multi-extension files expect), and
//! FITS date strings to MJD / Unix time.

use super::Header;

/// Looks a keyword up in the HDU's header, then in the primary header.
pub struct Keywords<'a> {
    pub hdu: &'a Header,
    pub primary: Option<&'a Header>,
}

impl<'a> Keywords<'a> {
    fn first<T>(&self, keys: &[&str], get: impl Fn(&'a Header, &str) -> Option<T>) -> Option<T> {
        for h in std::iter::once(self.hdu).chain(self.primary) {
            for k in keys {
                if let Some(v) = get(h, k) {
                    return Some(v);
                }
            }
        }
        None
    }

    pub fn string(&self, keys: &[&str]) -> Option<String> {
        self.first(keys, |h, k| {
            h.str(k)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
    }

    pub fn number(&self, keys: &[&str]) -> Option<f64> {
        self.first(keys, |h, k| h.f64(k).filter(|v| v.is_finite()))
    }

    pub fn object(&self) -> Option<String> {
        self.string(&["OBJECT"])
    }
    pub fn telescope(&self) -> Option<String> {
        self.string(&["TELESCOP"])
    }
    pub fn instrument(&self) -> Option<String> {
        self.string(&["INSTRUME"])
    }
    pub fn filter(&self) -> Option<String> {
        self.string(&["FILTER", "FILTER1", "FILTNAM1", "FILTNAM", "FILTER2"])
    }
    pub fn exptime(&self) -> Option<f64> {
        self.number(&["EXPTIME", "EXPOSURE", "ITIME"])
    }
    pub fn gain(&self) -> Option<f64> {
        self.number(&["GAIN", "EGAIN", "CCDGAIN"])
            .filter(|g| *g > 0.0)
    }
    /// Read noise in electrons.
    pub fn readnoise(&self) -> Option<f64> {
        self.number(&["RDNOISE", "READNOIS", "RON", "READNOISE"])
            .filter(|r| *r >= 0.0)
    }
    pub fn saturation(&self) -> Option<f64> {
        self.number(&["SATURATE", "SATLEVEL", "DATAMAX"])
    }
    pub fn zero_point(&self) -> Option<f64> {
        self.number(&["MAGZERO", "MAGZPT", "ZEROPT", "PHOTZP"])
    }

    /// Start of the exposure as MJD: MJD-OBS, else DATE-OBS (with TIME-OBS/UT when the date
    /// has no time part).
    pub fn mjd_obs(&self) -> Option<f64> {
        if let Some(m) = self.number(&["MJD-OBS", "MJD_OBS"]) {
            return Some(m);
        }
        let date = self.string(&["DATE-OBS", "DATE_OBS"])?;
        let mut mjd = parse_fits_date(&date)?;
        if !date.contains('T')
            && let Some(t) = self.string(&["TIME-OBS", "UT", "UTSTART", "UT-START"])
            && let Some(sec) = parse_hms(&t)
        {
            mjd += sec / 86400.0;
        }
        Some(mjd)
    }
}

/// MJD of a FITS date: `YYYY-MM-DD[Thh:mm:ss[.sss]]` or the old `DD/MM/YY` (19YY).
pub fn parse_fits_date(s: &str) -> Option<f64> {
    let s = s.trim().trim_end_matches('Z');
    if let Some((d, m, y)) = parse_old_date(s) {
        return mjd_from_civil(y, m, d);
    }
    let (date, time) = s.split_once('T').unwrap_or((s, ""));
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    let mut mjd = mjd_from_civil(y, m, d)?;
    if !time.is_empty() {
        mjd += parse_hms(time)? / 86400.0;
    }
    Some(mjd)
}

fn parse_old_date(s: &str) -> Option<(i64, i64, i64)> {
    let mut it = s.split('/');
    let d: i64 = it.next()?.trim().parse().ok()?;
    let m: i64 = it.next()?.trim().parse().ok()?;
    let y: i64 = it.next()?.trim().parse().ok()?;
    if it.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(0..100).contains(&y)
    {
        return None;
    }
    Some((d, m, 1900 + y))
}

/// Seconds of day from `hh:mm:ss[.sss]`.
fn parse_hms(s: &str) -> Option<f64> {
    let mut it = s.trim().split(':');
    let h: f64 = it.next()?.parse().ok()?;
    let m: f64 = it.next().unwrap_or("0").parse().ok()?;
    let sec: f64 = it.next().unwrap_or("0").parse().ok()?;
    let total = h * 3600.0 + m * 60.0 + sec;
    (0.0..=86_401.0).contains(&total).then_some(total)
}

/// MJD at 0h UTC of a Gregorian calendar date; `None` for a date that does not exist.
pub fn mjd_from_civil(y: i64, m: i64, d: i64) -> Option<f64> {
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(y).ok()?,
        u32::try_from(m).ok()?,
        u32::try_from(d).ok()?,
    )?;
    Some(date.signed_duration_since(mjd_epoch()).num_days() as f64)
}

/// MJD 0: 1858-11-17.
pub fn mjd_epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1858, 11, 17).expect("a real date")
}

/// Microseconds since the Unix epoch of an MJD (UTC, leap seconds ignored).
pub fn mjd_to_unix_us(mjd: f64) -> i64 {
    ((mjd - 40_587.0) * 86_400e6).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(mjd_from_civil(1858, 11, 17), Some(0.0));
        assert_eq!(mjd_from_civil(2000, 1, 1), Some(51_544.0));
        assert_eq!(mjd_from_civil(2021, 2, 29), None);
        assert_eq!(parse_fits_date("2000-01-01T12:00:00"), Some(51_544.5));
        assert_eq!(parse_fits_date("24/12/95"), mjd_from_civil(1995, 12, 24));
        assert_eq!(parse_fits_date("2021-13-01"), None);
        assert_eq!(parse_fits_date("2021-02-30T01:00:00"), None);
        assert_eq!(mjd_to_unix_us(40_587.0), 0);
    }
}

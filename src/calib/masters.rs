//! `astropipe calib build`: master bias, dark and flats from raw frames.
//!
//! - every frame: overscan subtracted (BIASSEC), trimmed (TRIMSEC or DATASEC);
//! - bias: the frames combined;
//! - dark: each frame minus the master bias, divided by its exposure time, combined: a dark
//!   *rate* (ADU/s), scaled to each science exposure when applied;
//! - flats, per filter: each frame minus bias and scaled dark, divided by its median,
//!   combined and normalised to a median of 1; pixels whose response is below 0.5 or above
//!   1.5 (or undefined) form the bad-pixel mask, stored as the flat's `BPM` extension.
//!
//! Frames are grouped by instrument and binning (and filter for flats); each group gives one
//! master, named `<type>_<instrument>_<binning>[_<filter>]_<date>.fits`, with provenance
//! keywords: `MASTER`, `COMBINE`, `NCOMBINE`, `INPUT001`…, `ASTROVER`, and the matching keys
//! (`INSTRUME`, `FILTER`, `CCDSUM`, `MJD-OBS` = the median of the inputs').

use super::CalibError;
use super::combine::{Method, combine};
use super::frames::{Frame, read_frame};
use crate::fits::HeaderValue;
use crate::fits::writer::{Encoding, FitsWriter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `calib build` is asked to do.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub bias: Vec<PathBuf>,
    pub dark: Vec<PathBuf>,
    pub flat: Vec<PathBuf>,
    pub out: PathBuf,
    pub method: Method,
}

/// One master written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MasterReport {
    pub kind: String,
    pub path: String,
    pub instrument: String,
    pub binning: String,
    pub filter: String,
    pub n_inputs: usize,
    pub width: usize,
    pub height: usize,
    /// Median of the master (ADU, ADU/s, or 1 for flats).
    pub median: f64,
    /// Bad pixels (flats only).
    pub bad_pixels: Option<usize>,
}

/// Everything `calib build` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildReport {
    pub masters: Vec<MasterReport>,
    /// Inputs that could not be used, with the reason.
    pub rejected: Vec<(String, String)>,
}

type Key = (String, String, String);

/// Builds and writes the masters.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, CalibError> {
    std::fs::create_dir_all(&opts.out).map_err(|source| CalibError::Write {
        path: opts.out.display().to_string(),
        source,
    })?;
    let mut report = BuildReport::default();
    let mut load = |paths: &[PathBuf], with_filter: bool| -> BTreeMap<Key, Vec<Frame>> {
        let mut groups: BTreeMap<Key, Vec<Frame>> = BTreeMap::new();
        for p in paths {
            match read_frame(p) {
                Ok(f) => {
                    let key = (
                        f.info.instrument.clone(),
                        f.info.binning.clone(),
                        if with_filter {
                            f.info.filter.clone()
                        } else {
                            String::new()
                        },
                    );
                    groups.entry(key).or_default().push(f);
                }
                Err(e) => report
                    .rejected
                    .push((p.display().to_string(), e.to_string())),
            }
        }
        groups
    };
    let biases = load(&opts.bias, false);
    let darks = load(&opts.dark, false);
    let flats = load(&opts.flat, true);
    let mut bias_masters: BTreeMap<(String, String), (Vec<f32>, usize, usize)> = BTreeMap::new();
    for ((instr, bin, _), frames) in biases {
        let Some((frames, w, h)) = same_shape(frames, &mut report) else {
            continue;
        };
        let master = stack(&frames, opts.method, |f| f.pixels.clone());
        let m = write_master(opts, "bias", &frames, &master, w, h, None)?;
        report.masters.push(m);
        bias_masters.insert((instr, bin), (master, w, h));
    }
    let minus_bias = |f: &Frame| -> Vec<f32> {
        match bias_masters.get(&(f.info.instrument.clone(), f.info.binning.clone())) {
            Some((b, w, h)) if (*w, *h) == (f.width, f.height) => {
                f.pixels.iter().zip(b).map(|(v, b)| v - b).collect()
            }
            _ => f.pixels.clone(),
        }
    };
    let mut dark_masters: BTreeMap<(String, String), (Vec<f32>, usize, usize)> = BTreeMap::new();
    for ((instr, bin, _), frames) in darks {
        let (frames, bad): (Vec<Frame>, Vec<Frame>) = frames
            .into_iter()
            .partition(|f| f.info.exptime.is_some_and(|t| t > 0.0));
        for f in bad {
            report
                .rejected
                .push((f.path, "dark frame without a positive EXPTIME".into()));
        }
        let Some((frames, w, h)) = same_shape(frames, &mut report) else {
            continue;
        };
        let master = stack(&frames, opts.method, |f| {
            let t = f.info.exptime.unwrap_or(1.0) as f32;
            minus_bias(f).into_iter().map(|v| v / t).collect()
        });
        let m = write_master(opts, "dark", &frames, &master, w, h, None)?;
        report.masters.push(m);
        dark_masters.insert((instr, bin), (master, w, h));
    }
    for (_, frames) in flats {
        let Some((frames, w, h)) = same_shape(frames, &mut report) else {
            continue;
        };
        let mut master = stack(&frames, opts.method, |f| {
            let mut v = minus_bias(f);
            if let (Some((d, dw, dh)), Some(t)) = (
                dark_masters.get(&(f.info.instrument.clone(), f.info.binning.clone())),
                f.info.exptime,
            ) && (*dw, *dh) == (f.width, f.height)
            {
                v.iter_mut().zip(d).for_each(|(v, d)| *v -= d * t as f32);
            }
            let med = finite_median(&v);
            if med.is_finite() && med != 0.0 {
                v.iter_mut().for_each(|x| *x /= med);
            }
            v
        });
        let med = finite_median(&master);
        if med.is_finite() && med > 0.0 {
            master.iter_mut().for_each(|v| *v /= med);
        }
        let bpm: Vec<f32> = master
            .iter()
            .map(|v| {
                if v.is_finite() && (0.5..=1.5).contains(v) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let m = write_master(opts, "flat", &frames, &master, w, h, Some(&bpm))?;
        report.masters.push(m);
    }
    Ok(report)
}

/// Keeps the frames of the group's most common shape; the others are rejected.
fn same_shape(frames: Vec<Frame>, report: &mut BuildReport) -> Option<(Vec<Frame>, usize, usize)> {
    let mut counts: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for f in &frames {
        *counts.entry((f.width, f.height)).or_default() += 1;
    }
    let (&(w, h), _) = counts.iter().max_by_key(|(_, n)| **n)?;
    let (keep, other): (Vec<Frame>, Vec<Frame>) = frames
        .into_iter()
        .partition(|f| (f.width, f.height) == (w, h));
    for f in other {
        let reason = format!("{}x{} differs from the group's {w}x{h}", f.width, f.height);
        report.rejected.push((f.path, reason));
    }
    (!keep.is_empty()).then_some((keep, w, h))
}

fn stack(
    frames: &[Frame],
    method: Method,
    prep: impl Fn(&Frame) -> Vec<f32> + Sync + Send,
) -> Vec<f32> {
    use rayon::prelude::*;
    let prepared: Vec<Vec<f32>> = frames.par_iter().map(&prep).collect();
    let refs: Vec<&[f32]> = prepared.iter().map(|v| v.as_slice()).collect();
    combine(&refs, method)
}

fn finite_median(v: &[f32]) -> f32 {
    let mut f: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    crate::image::background::median(&mut f)
}

#[allow(clippy::too_many_arguments)]
fn write_master(
    opts: &BuildOptions,
    kind: &str,
    frames: &[Frame],
    pixels: &[f32],
    w: usize,
    h: usize,
    bpm: Option<&[f32]>,
) -> Result<MasterReport, CalibError> {
    let info = &frames[0].info;
    let mut mjds: Vec<f64> = frames.iter().filter_map(|f| f.info.mjd).collect();
    mjds.sort_by(|a, b| a.total_cmp(b));
    let mjd = mjds.get(mjds.len() / 2).copied();
    let date = mjd.and_then(civil_date).unwrap_or_else(|| "nodate".into());
    let clean = |s: &str| -> String {
        let s: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if s.is_empty() { "none".into() } else { s }
    };
    let mut name = format!(
        "{kind}_{}_{}",
        clean(&info.instrument),
        clean(&info.binning)
    );
    if kind == "flat" {
        name.push_str(&format!("_{}", clean(&info.filter)));
    }
    name.push_str(&format!("_{date}.fits"));
    let path = opts.out.join(&name);
    let mut cards: Vec<(String, HeaderValue)> = vec![
        ("MASTER".into(), HeaderValue::Str(kind.to_uppercase())),
        ("COMBINE".into(), HeaderValue::Str(opts.method.name())),
        ("NCOMBINE".into(), HeaderValue::Int(frames.len() as i64)),
        ("INSTRUME".into(), HeaderValue::Str(info.instrument.clone())),
        (
            "CCDSUM".into(),
            HeaderValue::Str(info.binning.replace('x', " ")),
        ),
        (
            "ASTROVER".into(),
            HeaderValue::Str(format!("astropipe {}", env!("CARGO_PKG_VERSION"))),
        ),
    ];
    if kind == "flat" {
        cards.push(("FILTER".into(), HeaderValue::Str(info.filter.clone())));
    }
    if kind == "dark" {
        cards.push(("BUNIT".into(), HeaderValue::Str("adu/s".into())));
        cards.push(("EXPTIME".into(), HeaderValue::Float(1.0)));
    }
    if let Some(m) = mjd {
        cards.push(("MJD-OBS".into(), HeaderValue::Float(m)));
    }
    for (i, f) in frames.iter().enumerate().take(999) {
        let base = Path::new(&f.path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let base: String = base
            .chars()
            .filter(|c| c.is_ascii() && *c != '\'')
            .take(60)
            .collect();
        cards.push((format!("INPUT{:03}", i + 1), HeaderValue::Str(base)));
    }
    if let Some(step) = frames[0].steps.first() {
        cards.push(("PREPROC".into(), HeaderValue::Str(step.replace('\'', ""))));
    }
    let refs: Vec<(&str, HeaderValue)> =
        cards.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let px: Vec<f64> = pixels.iter().map(|v| *v as f64).collect();
    let mut wtr = FitsWriter::new();
    wtr.image(w, h, &px, Encoding::F32, &refs);
    let mut bad_pixels = None;
    if let Some(bpm) = bpm {
        let b: Vec<f64> = bpm.iter().map(|v| *v as f64).collect();
        bad_pixels = Some(bpm.iter().filter(|v| **v > 0.0).count());
        wtr.image(
            w,
            h,
            &b,
            Encoding::I16,
            &[("EXTNAME", HeaderValue::Str("BPM".into()))],
        );
    }
    // Written whole to a temporary name, then renamed: a master is never half there.
    let tmp = opts.out.join(format!(".{name}.tmp"));
    let write = |p: &std::path::Path| {
        let p = p.display().to_string();
        move |source| CalibError::Write { path: p, source }
    };
    std::fs::write(&tmp, wtr.finish()).map_err(write(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(write(&path))?;
    Ok(MasterReport {
        kind: kind.into(),
        path: path.display().to_string(),
        instrument: info.instrument.clone(),
        binning: info.binning.clone(),
        filter: if kind == "flat" {
            info.filter.clone()
        } else {
            String::new()
        },
        n_inputs: frames.len(),
        width: w,
        height: h,
        median: finite_median(pixels) as f64,
        bad_pixels,
    })
}

/// `YYYYMMDD` of an MJD (proleptic Gregorian); `None` outside chrono's range.
fn civil_date(mjd: f64) -> Option<String> {
    if !mjd.is_finite() {
        return None;
    }
    let days = chrono::TimeDelta::try_days(mjd.floor() as i64)?;
    let date = crate::fits::keywords::mjd_epoch().checked_add_signed(days)?;
    Some(date.format("%Y%m%d").to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_date(51544.0).as_deref(), Some("20000101"));
        assert_eq!(super::civil_date(60000.5).as_deref(), Some("20230225"));
        assert_eq!(super::civil_date(f64::NAN), None);
    }
}

//! The catalog's tables as Arrow schemas, with units and UCDs in the field metadata (keys
//! `unit`, `ucd`, `description`), and the row types the pipeline fills.

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// The HATS spatial index column: NESTED HEALPix at order 29, Int64 as HATS specifies.
pub const HEALPIX_29: &str = "_healpix_29";

fn field(name: &str, dt: DataType, nullable: bool, unit: &str, ucd: &str, desc: &str) -> Field {
    let mut md = HashMap::new();
    if !unit.is_empty() {
        md.insert("unit".to_string(), unit.to_string());
    }
    if !ucd.is_empty() {
        md.insert("ucd".to_string(), ucd.to_string());
    }
    md.insert("description".to_string(), desc.to_string());
    Field::new(name, dt, nullable).with_metadata(md)
}

fn list_f64() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Schema of `exposures`: one row per processed image HDU (plane).
pub static EXPOSURES: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    Arc::new(Schema::new(vec![
        field(
            "exposure_id",
            Int64,
            false,
            "",
            "meta.id;obs",
            "stable id: hash of the file content and HDU",
        ),
        field(
            "file_uri",
            Utf8,
            false,
            "",
            "meta.ref.url",
            "the input file as given to ingest",
        ),
        field(
            "file_sha256",
            Utf8,
            false,
            "",
            "",
            "SHA-256 of the input file's bytes",
        ),
        field(
            "hdu",
            Int32,
            false,
            "",
            "meta.number",
            "0-based HDU index (0 = primary)",
        ),
        field(
            "plane",
            Int32,
            true,
            "",
            "meta.number",
            "0-based plane of a data cube (null for 2-D images)",
        ),
        field("object", Utf8, true, "", "meta.id;src", "OBJECT keyword"),
        field("telescope", Utf8, true, "", "instr.tel", "TELESCOP keyword"),
        field("instrument", Utf8, true, "", "instr", "INSTRUME keyword"),
        field("filter", Utf8, true, "", "instr.filter", "FILTER keyword"),
        field(
            "exptime",
            Float64,
            true,
            "s",
            "time.duration;obs.exposure",
            "exposure time",
        ),
        field(
            "date_obs",
            ts(),
            true,
            "",
            "time.start;obs",
            "start of the exposure (UTC)",
        ),
        field(
            "mjd_obs",
            Float64,
            true,
            "d",
            "time.epoch;obs",
            "start of the exposure, MJD",
        ),
        field("naxis1", Int32, false, "pix", "", "image width"),
        field("naxis2", Int32, false, "pix", "", "image height"),
        field(
            "ra_center",
            Float64,
            true,
            "deg",
            "pos.eq.ra",
            "ICRS right ascension of the image centre",
        ),
        field(
            "dec_center",
            Float64,
            true,
            "deg",
            "pos.eq.dec",
            "ICRS declination of the image centre",
        ),
        field(
            "footprint_ra",
            list_f64(),
            true,
            "deg",
            "pos.eq.ra",
            "corners (0,0), (w-1,0), (w-1,h-1), (0,h-1)",
        ),
        field(
            "footprint_dec",
            list_f64(),
            true,
            "deg",
            "pos.eq.dec",
            "corners, same order as footprint_ra",
        ),
        field(
            "pixel_scale_arcsec",
            Float64,
            true,
            "arcsec/pix",
            "instr.scale",
            "mean pixel scale from the WCS",
        ),
        field(
            "wcs_status",
            Utf8,
            false,
            "",
            "",
            "'ok', or why the HDU has no sky positions",
        ),
        field(
            "background_level",
            Float64,
            true,
            "adu",
            "instr.skyLevel",
            "median background",
        ),
        field(
            "background_rms",
            Float64,
            true,
            "adu",
            "stat.stdev;instr.skyLevel",
            "median background RMS",
        ),
        field(
            "fwhm_pix",
            Float64,
            true,
            "pix",
            "phys.angSize;instr.det.psf",
            "median FWHM of good stars",
        ),
        field(
            "fwhm_arcsec",
            Float64,
            true,
            "arcsec",
            "instr.obsty.seeing",
            "median FWHM of good stars",
        ),
        field(
            "ellipticity",
            Float64,
            true,
            "",
            "src.ellipticity",
            "median 1 - b/a of good stars",
        ),
        field(
            "n_sources",
            Int64,
            false,
            "",
            "meta.number",
            "number of detected sources",
        ),
        field(
            "zero_point",
            Float64,
            true,
            "mag",
            "phot.mag;arith.zp",
            "photometric zero point (MAGZERO/MAGZPT)",
        ),
        field(
            "limiting_mag",
            Float64,
            true,
            "mag",
            "phot.mag;stat.max",
            "5-sigma point-source limiting magnitude",
        ),
        field(
            "aperture_radii",
            list_f64(),
            false,
            "pix",
            "",
            "radii of flux_aper",
        ),
        field(
            "cosmic_ray_pixels",
            Int64,
            true,
            "",
            "meta.number",
            "pixels flagged and cleaned as cosmic-ray hits (L.A.Cosmic)",
        ),
        field(
            "calib_bias",
            Utf8,
            true,
            "",
            "meta.file;meta.calibLevel",
            "master bias applied (calib build file name)",
        ),
        field(
            "calib_dark",
            Utf8,
            true,
            "",
            "meta.file;meta.calibLevel",
            "master dark applied",
        ),
        field(
            "calib_flat",
            Utf8,
            true,
            "",
            "meta.file;meta.calibLevel",
            "master flat applied",
        ),
        field(
            "pipeline_version",
            Utf8,
            false,
            "",
            "meta.version",
            "astropipe version",
        ),
        field(
            "processed_at",
            ts(),
            false,
            "",
            "time.processing",
            "when the HDU was processed",
        ),
        field(
            "header",
            Utf8,
            false,
            "",
            "meta.fits",
            "all header cards as JSON",
        ),
    ]))
});

/// Schema of `sources`: one row per detection.
pub static SOURCES: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    Arc::new(Schema::new(vec![
        field(
            "source_id",
            Utf8,
            false,
            "",
            "meta.id;meta.main",
            "unique and stable: <exposure_id hex>-<number>",
        ),
        field(
            "exposure_id",
            Int64,
            false,
            "",
            "meta.id;obs",
            "the exposure the source was detected on",
        ),
        field(
            "ra",
            Float64,
            true,
            "deg",
            "pos.eq.ra;meta.main",
            "ICRS right ascension",
        ),
        field(
            "dec",
            Float64,
            true,
            "deg",
            "pos.eq.dec;meta.main",
            "ICRS declination",
        ),
        field(
            "ra_err",
            Float64,
            true,
            "arcsec",
            "stat.error;pos.eq.ra",
            "1-sigma error of ra * cos(dec)",
        ),
        field(
            "dec_err",
            Float64,
            true,
            "arcsec",
            "stat.error;pos.eq.dec",
            "1-sigma error of dec",
        ),
        field(
            "x",
            Float64,
            false,
            "pix",
            "pos.cartesian.x;instr.det",
            "0-based barycentre column",
        ),
        field(
            "y",
            Float64,
            false,
            "pix",
            "pos.cartesian.y;instr.det",
            "0-based barycentre row",
        ),
        // Columns added after catalogs were first written are nullable, so that the rows of
        // older increments read as NULL there instead of failing the query.
        field(
            "x_win",
            Float64,
            true,
            "pix",
            "pos.cartesian.x;instr.det;stat.fit",
            "0-based windowed centroid column (SExtractor XWIN; ra/dec come from it)",
        ),
        field(
            "y_win",
            Float64,
            true,
            "pix",
            "pos.cartesian.y;instr.det;stat.fit",
            "0-based windowed centroid row (SExtractor YWIN)",
        ),
        field(
            "a",
            Float64,
            false,
            "pix",
            "phys.size.smajAxis",
            "semi-major axis (second moments)",
        ),
        field(
            "b",
            Float64,
            false,
            "pix",
            "phys.size.sminAxis",
            "semi-minor axis",
        ),
        field(
            "theta",
            Float64,
            false,
            "deg",
            "pos.posAng",
            "major axis angle, counter-clockwise from +x",
        ),
        field(
            "flux",
            Float64,
            false,
            "adu",
            "phot.flux;meta.main",
            "best total flux (AUTO)",
        ),
        field(
            "flux_err",
            Float64,
            false,
            "adu",
            "stat.error;phot.flux",
            "error of flux",
        ),
        field(
            "flux_auto",
            Float64,
            false,
            "adu",
            "phot.flux",
            "flux in the Kron (AUTO) aperture",
        ),
        field(
            "flux_auto_err",
            Float64,
            false,
            "adu",
            "stat.error;phot.flux",
            "error of flux_auto",
        ),
        field(
            "flux_aper",
            list_f64(),
            false,
            "adu",
            "phot.flux",
            "fluxes in circular apertures (radii in exposures.aperture_radii)",
        ),
        field(
            "flux_aper_err",
            list_f64(),
            false,
            "adu",
            "stat.error;phot.flux",
            "errors of flux_aper",
        ),
        field(
            "flux_iso",
            Float64,
            false,
            "adu",
            "phot.flux",
            "isophotal flux",
        ),
        field(
            "mag_auto",
            Float64,
            true,
            "mag",
            "phot.mag",
            "AB magnitude of flux_auto, when a zero point is known",
        ),
        field(
            "mag_auto_err",
            Float64,
            true,
            "mag",
            "stat.error;phot.mag",
            "error of mag_auto",
        ),
        field(
            "kron_radius",
            Float64,
            false,
            "",
            "",
            "Kron radius in units of a, b",
        ),
        field(
            "fwhm",
            Float64,
            true,
            "pix",
            "phys.angSize",
            "full width at half maximum",
        ),
        field(
            "ellipticity",
            Float64,
            true,
            "",
            "src.ellipticity",
            "1 - b/a",
        ),
        field(
            "peak",
            Float64,
            false,
            "adu",
            "phot.flux;stat.max",
            "highest background-subtracted pixel",
        ),
        field(
            "background",
            Float64,
            false,
            "adu",
            "instr.skyLevel",
            "background at the source",
        ),
        field(
            "npix",
            Int32,
            false,
            "pix",
            "phys.area",
            "isophotal area in pixels",
        ),
        field("snr", Float64, true, "", "stat.snr", "flux / flux_err"),
        field(
            "flags",
            Int32,
            false,
            "",
            "meta.code.qual",
            "SExtractor flag bits (1..128) + astropipe bits (256 no WCS, 512 cosmic ray, 1024 bad pixels)",
        ),
        field(
            "mjd_obs",
            Float64,
            true,
            "d",
            "time.epoch;obs",
            "start of the exposure, MJD",
        ),
        field(
            "filter",
            Utf8,
            true,
            "",
            "instr.filter",
            "filter of the exposure",
        ),
        field(
            HEALPIX_29,
            Int64,
            true,
            "",
            "pos.healpix",
            "NESTED HEALPix index at order 29 (HATS spatial index)",
        ),
    ]))
});

/// One `exposures` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRow {
    pub exposure_id: i64,
    pub file_uri: String,
    pub file_sha256: String,
    pub hdu: i32,
    pub plane: Option<i32>,
    pub object: Option<String>,
    pub telescope: Option<String>,
    pub instrument: Option<String>,
    pub filter: Option<String>,
    pub exptime: Option<f64>,
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub date_obs_us: Option<i64>,
    pub mjd_obs: Option<f64>,
    pub naxis1: i32,
    pub naxis2: i32,
    pub ra_center: Option<f64>,
    pub dec_center: Option<f64>,
    pub footprint: Option<[(f64, f64); 4]>,
    pub pixel_scale_arcsec: Option<f64>,
    pub wcs_status: String,
    pub background_level: Option<f64>,
    pub background_rms: Option<f64>,
    pub fwhm_pix: Option<f64>,
    pub fwhm_arcsec: Option<f64>,
    pub ellipticity: Option<f64>,
    pub n_sources: i64,
    pub zero_point: Option<f64>,
    pub limiting_mag: Option<f64>,
    pub aperture_radii: Vec<f64>,
    pub cosmic_ray_pixels: i64,
    pub calib_bias: Option<String>,
    pub calib_dark: Option<String>,
    pub calib_flat: Option<String>,
    pub pipeline_version: String,
    pub processed_at_us: i64,
    pub header_json: String,
}

/// One `sources` row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceRow {
    pub source_id: String,
    pub exposure_id: i64,
    pub ra: Option<f64>,
    pub dec: Option<f64>,
    pub ra_err: Option<f64>,
    pub dec_err: Option<f64>,
    pub x: f64,
    pub y: f64,
    pub x_win: f64,
    pub y_win: f64,
    pub a: f64,
    pub b: f64,
    pub theta: f64,
    pub flux_auto: f64,
    pub flux_auto_err: f64,
    pub flux_aper: Vec<f64>,
    pub flux_aper_err: Vec<f64>,
    pub flux_iso: f64,
    pub mag_auto: Option<f64>,
    pub mag_auto_err: Option<f64>,
    pub kron_radius: f64,
    pub fwhm: Option<f64>,
    pub ellipticity: Option<f64>,
    pub peak: f64,
    pub background: f64,
    pub npix: i32,
    pub snr: Option<f64>,
    pub flags: i32,
    pub mjd_obs: Option<f64>,
    pub filter: Option<String>,
    pub healpix_29: Option<i64>,
}

fn list_col<'a>(values: impl Iterator<Item = Option<&'a [f64]>>) -> ArrayRef {
    let mut b = ListBuilder::new(Float64Builder::new());
    for v in values {
        match v {
            Some(v) => {
                b.values().append_slice(v);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

macro_rules! col {
    ($rows:expr, $builder:ty, |$r:ident| $e:expr) => {{
        let mut b = <$builder>::new();
        for $r in $rows {
            b.append_option($e);
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}

fn ts_col(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// Builds an `exposures` batch.
pub fn exposures_batch(rows: &[ExposureRow]) -> arrow::error::Result<RecordBatch> {
    let corners = |r: &ExposureRow, dec: bool| {
        r.footprint.map(|f| {
            f.iter()
                .map(|c| if dec { c.1 } else { c.0 })
                .collect::<Vec<f64>>()
        })
    };
    let fra: Vec<Option<Vec<f64>>> = rows.iter().map(|r| corners(r, false)).collect();
    let fdec: Vec<Option<Vec<f64>>> = rows.iter().map(|r| corners(r, true)).collect();
    let cols: Vec<ArrayRef> = vec![
        col!(rows, Int64Builder, |r| Some(r.exposure_id)),
        col!(rows, StringBuilder, |r| Some(&r.file_uri)),
        col!(rows, StringBuilder, |r| Some(&r.file_sha256)),
        col!(rows, Int32Builder, |r| Some(r.hdu)),
        col!(rows, Int32Builder, |r| r.plane),
        col!(rows, StringBuilder, |r| r.object.as_ref()),
        col!(rows, StringBuilder, |r| r.telescope.as_ref()),
        col!(rows, StringBuilder, |r| r.instrument.as_ref()),
        col!(rows, StringBuilder, |r| r.filter.as_ref()),
        col!(rows, Float64Builder, |r| r.exptime),
        ts_col(rows.iter().map(|r| r.date_obs_us)),
        col!(rows, Float64Builder, |r| r.mjd_obs),
        col!(rows, Int32Builder, |r| Some(r.naxis1)),
        col!(rows, Int32Builder, |r| Some(r.naxis2)),
        col!(rows, Float64Builder, |r| r.ra_center),
        col!(rows, Float64Builder, |r| r.dec_center),
        list_col(fra.iter().map(|v| v.as_deref())),
        list_col(fdec.iter().map(|v| v.as_deref())),
        col!(rows, Float64Builder, |r| r.pixel_scale_arcsec),
        col!(rows, StringBuilder, |r| Some(&r.wcs_status)),
        col!(rows, Float64Builder, |r| r.background_level),
        col!(rows, Float64Builder, |r| r.background_rms),
        col!(rows, Float64Builder, |r| r.fwhm_pix),
        col!(rows, Float64Builder, |r| r.fwhm_arcsec),
        col!(rows, Float64Builder, |r| r.ellipticity),
        col!(rows, Int64Builder, |r| Some(r.n_sources)),
        col!(rows, Float64Builder, |r| r.zero_point),
        col!(rows, Float64Builder, |r| r.limiting_mag),
        list_col(rows.iter().map(|r| Some(r.aperture_radii.as_slice()))),
        col!(rows, Int64Builder, |r| Some(r.cosmic_ray_pixels)),
        col!(rows, StringBuilder, |r| r.calib_bias.as_ref()),
        col!(rows, StringBuilder, |r| r.calib_dark.as_ref()),
        col!(rows, StringBuilder, |r| r.calib_flat.as_ref()),
        col!(rows, StringBuilder, |r| Some(&r.pipeline_version)),
        ts_col(rows.iter().map(|r| Some(r.processed_at_us))),
        col!(rows, StringBuilder, |r| Some(&r.header_json)),
    ];
    RecordBatch::try_new(EXPOSURES.clone(), cols)
}

/// Builds a `sources` batch.
pub fn sources_batch(rows: &[SourceRow]) -> arrow::error::Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        col!(rows, StringBuilder, |r| Some(&r.source_id)),
        col!(rows, Int64Builder, |r| Some(r.exposure_id)),
        col!(rows, Float64Builder, |r| r.ra),
        col!(rows, Float64Builder, |r| r.dec),
        col!(rows, Float64Builder, |r| r.ra_err),
        col!(rows, Float64Builder, |r| r.dec_err),
        col!(rows, Float64Builder, |r| Some(r.x)),
        col!(rows, Float64Builder, |r| Some(r.y)),
        col!(rows, Float64Builder, |r| Some(r.x_win)),
        col!(rows, Float64Builder, |r| Some(r.y_win)),
        col!(rows, Float64Builder, |r| Some(r.a)),
        col!(rows, Float64Builder, |r| Some(r.b)),
        col!(rows, Float64Builder, |r| Some(r.theta)),
        col!(rows, Float64Builder, |r| Some(r.flux_auto)),
        col!(rows, Float64Builder, |r| Some(r.flux_auto_err)),
        col!(rows, Float64Builder, |r| Some(r.flux_auto)),
        col!(rows, Float64Builder, |r| Some(r.flux_auto_err)),
        list_col(rows.iter().map(|r| Some(r.flux_aper.as_slice()))),
        list_col(rows.iter().map(|r| Some(r.flux_aper_err.as_slice()))),
        col!(rows, Float64Builder, |r| Some(r.flux_iso)),
        col!(rows, Float64Builder, |r| r.mag_auto),
        col!(rows, Float64Builder, |r| r.mag_auto_err),
        col!(rows, Float64Builder, |r| Some(r.kron_radius)),
        col!(rows, Float64Builder, |r| r.fwhm),
        col!(rows, Float64Builder, |r| r.ellipticity),
        col!(rows, Float64Builder, |r| Some(r.peak)),
        col!(rows, Float64Builder, |r| Some(r.background)),
        col!(rows, Int32Builder, |r| Some(r.npix)),
        col!(rows, Float64Builder, |r| r.snr),
        col!(rows, Int32Builder, |r| Some(r.flags)),
        col!(rows, Float64Builder, |r| r.mjd_obs),
        col!(rows, StringBuilder, |r| r.filter.as_ref()),
        col!(rows, Int64Builder, |r| r.healpix_29),
    ];
    RecordBatch::try_new(SOURCES.clone(), cols)
}

//! The catalog's tables: each defined once, as a list of columns — name, nullability, unit,
//! UCD, description and how a row fills it ([`Column`]). The Arrow schemas (units and UCDs in
//! the field metadata, keys `unit`, `ucd`, `description`) and the batch builders are both made
//! from that list, so they cannot drift apart.

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// The HATS spatial index column: NESTED HEALPix at order 29, Int64 as HATS specifies.
pub const HEALPIX_29: &str = "_healpix_29";

/// How a row fills a column; the variant decides the column's Arrow type.
pub enum Fill<R> {
    I64(fn(&R) -> Option<i64>),
    I32(fn(&R) -> Option<i32>),
    F64(fn(&R) -> Option<f64>),
    Str(for<'a> fn(&'a R) -> Option<&'a str>),
    /// Microseconds since 1970-01-01T00:00:00Z, as a UTC timestamp.
    Ts(fn(&R) -> Option<i64>),
    /// A list of float64 borrowed from the row.
    List(for<'a> fn(&'a R) -> Option<&'a [f64]>),
    /// A list of float64 computed from the row.
    ListOwned(fn(&R) -> Option<Vec<f64>>),
}

/// String columns that may hold any Unicode (paths and URIs); every other string column
/// holds identifiers or FITS header text, which is ASCII.
const NOT_ASCII: &[&str] = &["file_uri", "calib_bias", "calib_dark", "calib_flat"];

/// One column of a table.
pub struct Column<R: 'static> {
    pub name: &'static str,
    pub nullable: bool,
    pub unit: &'static str,
    pub ucd: &'static str,
    pub description: &'static str,
    pub fill: Fill<R>,
}

fn list_f64() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
}

impl<R> Column<R> {
    pub fn data_type(&self) -> DataType {
        match self.fill {
            Fill::I64(_) => DataType::Int64,
            Fill::I32(_) => DataType::Int32,
            Fill::F64(_) => DataType::Float64,
            Fill::Str(_) => DataType::Utf8,
            Fill::Ts(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Fill::List(_) | Fill::ListOwned(_) => list_f64(),
        }
    }

    /// The Arrow field, with unit, UCD and description in its metadata.
    pub fn field(&self) -> Field {
        let mut md = HashMap::new();
        if !self.unit.is_empty() {
            md.insert("unit".to_string(), self.unit.to_string());
        }
        if !self.ucd.is_empty() {
            md.insert("ucd".to_string(), self.ucd.to_string());
        }
        md.insert("description".to_string(), self.description.to_string());
        if matches!(self.fill, Fill::Str(_)) && !NOT_ASCII.contains(&self.name) {
            // Identifiers and FITS header values: ASCII (VOTable `char`, not `unicodeChar`).
            md.insert("votable.ascii".to_string(), "true".to_string());
        }
        Field::new(self.name, self.data_type(), self.nullable).with_metadata(md)
    }

    /// The column's values for `rows`.
    fn build(&self, rows: &[R]) -> ArrayRef {
        fn list<'a>(values: impl Iterator<Item = Option<&'a [f64]>>) -> ArrayRef {
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
        macro_rules! scalar {
            ($builder:expr, $f:expr) => {{
                let mut b = $builder;
                for r in rows {
                    b.append_option($f(r));
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        match &self.fill {
            Fill::I64(f) => scalar!(Int64Builder::with_capacity(rows.len()), f),
            Fill::I32(f) => scalar!(Int32Builder::with_capacity(rows.len()), f),
            Fill::F64(f) => scalar!(Float64Builder::with_capacity(rows.len()), f),
            Fill::Str(f) => scalar!(StringBuilder::new(), f),
            Fill::Ts(f) => scalar!(TimestampMicrosecondBuilder::new().with_timezone("UTC"), f),
            Fill::List(f) => list(rows.iter().map(f)),
            Fill::ListOwned(f) => {
                let owned: Vec<Option<Vec<f64>>> = rows.iter().map(f).collect();
                list(owned.iter().map(|v| v.as_deref()))
            }
        }
    }
}

fn schema_of<R>(columns: &[Column<R>]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(Column::field).collect::<Vec<_>>(),
    ))
}

fn batch_of<R>(
    columns: &[Column<R>],
    schema: &SchemaRef,
    rows: &[R],
) -> arrow::error::Result<RecordBatch> {
    RecordBatch::try_new(
        schema.clone(),
        columns.iter().map(|c| c.build(rows)).collect(),
    )
}

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

/// The columns of `exposures`: one row per processed image HDU (plane).
pub static EXPOSURE_COLUMNS: &[Column<ExposureRow>] = &[
    Column {
        name: "exposure_id",
        nullable: false,
        unit: "",
        ucd: "meta.id;obs",
        description: "stable id: hash of the file content and HDU",
        fill: Fill::I64(|r| Some(r.exposure_id)),
    },
    Column {
        name: "file_uri",
        nullable: false,
        unit: "",
        ucd: "meta.ref.url",
        description: "the input file as given to ingest",
        fill: Fill::Str(|r| Some(r.file_uri.as_str())),
    },
    Column {
        name: "file_sha256",
        nullable: false,
        unit: "",
        ucd: "",
        description: "SHA-256 of the input file's bytes",
        fill: Fill::Str(|r| Some(r.file_sha256.as_str())),
    },
    Column {
        name: "hdu",
        nullable: false,
        unit: "",
        ucd: "meta.number",
        description: "0-based HDU index (0 = primary)",
        fill: Fill::I32(|r| Some(r.hdu)),
    },
    Column {
        name: "plane",
        nullable: true,
        unit: "",
        ucd: "meta.number",
        description: "0-based plane of a data cube (null for 2-D images)",
        fill: Fill::I32(|r| r.plane),
    },
    Column {
        name: "object",
        nullable: true,
        unit: "",
        ucd: "meta.id;src",
        description: "OBJECT keyword",
        fill: Fill::Str(|r| r.object.as_deref()),
    },
    Column {
        name: "telescope",
        nullable: true,
        unit: "",
        ucd: "instr.tel",
        description: "TELESCOP keyword",
        fill: Fill::Str(|r| r.telescope.as_deref()),
    },
    Column {
        name: "instrument",
        nullable: true,
        unit: "",
        ucd: "instr",
        description: "INSTRUME keyword",
        fill: Fill::Str(|r| r.instrument.as_deref()),
    },
    Column {
        name: "filter",
        nullable: true,
        unit: "",
        ucd: "instr.filter",
        description: "FILTER keyword",
        fill: Fill::Str(|r| r.filter.as_deref()),
    },
    Column {
        name: "exptime",
        nullable: true,
        unit: "s",
        ucd: "time.duration;obs.exposure",
        description: "exposure time",
        fill: Fill::F64(|r| r.exptime),
    },
    Column {
        name: "date_obs",
        nullable: true,
        unit: "",
        ucd: "time.start;obs",
        description: "start of the exposure (UTC)",
        fill: Fill::Ts(|r| r.date_obs_us),
    },
    Column {
        name: "mjd_obs",
        nullable: true,
        unit: "d",
        ucd: "time.epoch;obs",
        description: "start of the exposure, MJD",
        fill: Fill::F64(|r| r.mjd_obs),
    },
    Column {
        name: "naxis1",
        nullable: false,
        unit: "pix",
        ucd: "",
        description: "image width",
        fill: Fill::I32(|r| Some(r.naxis1)),
    },
    Column {
        name: "naxis2",
        nullable: false,
        unit: "pix",
        ucd: "",
        description: "image height",
        fill: Fill::I32(|r| Some(r.naxis2)),
    },
    Column {
        name: "ra_center",
        nullable: true,
        unit: "deg",
        ucd: "pos.eq.ra",
        description: "ICRS right ascension of the image centre",
        fill: Fill::F64(|r| r.ra_center),
    },
    Column {
        name: "dec_center",
        nullable: true,
        unit: "deg",
        ucd: "pos.eq.dec",
        description: "ICRS declination of the image centre",
        fill: Fill::F64(|r| r.dec_center),
    },
    Column {
        name: "footprint_ra",
        nullable: true,
        unit: "deg",
        ucd: "pos.eq.ra",
        description: "corners (0,0), (w-1,0), (w-1,h-1), (0,h-1)",
        fill: Fill::ListOwned(|r| r.footprint.map(|f| f.iter().map(|c| c.0).collect())),
    },
    Column {
        name: "footprint_dec",
        nullable: true,
        unit: "deg",
        ucd: "pos.eq.dec",
        description: "corners, same order as footprint_ra",
        fill: Fill::ListOwned(|r| r.footprint.map(|f| f.iter().map(|c| c.1).collect())),
    },
    Column {
        name: "pixel_scale_arcsec",
        nullable: true,
        unit: "arcsec/pix",
        ucd: "instr.scale",
        description: "mean pixel scale from the WCS",
        fill: Fill::F64(|r| r.pixel_scale_arcsec),
    },
    Column {
        name: "wcs_status",
        nullable: false,
        unit: "",
        ucd: "",
        description: "'ok', or why the HDU has no sky positions",
        fill: Fill::Str(|r| Some(r.wcs_status.as_str())),
    },
    Column {
        name: "background_level",
        nullable: true,
        unit: "adu",
        ucd: "instr.skyLevel",
        description: "median background",
        fill: Fill::F64(|r| r.background_level),
    },
    Column {
        name: "background_rms",
        nullable: true,
        unit: "adu",
        ucd: "stat.stdev;instr.skyLevel",
        description: "median background RMS",
        fill: Fill::F64(|r| r.background_rms),
    },
    Column {
        name: "fwhm_pix",
        nullable: true,
        unit: "pix",
        ucd: "phys.angSize;instr.det.psf",
        description: "median FWHM of good stars",
        fill: Fill::F64(|r| r.fwhm_pix),
    },
    Column {
        name: "fwhm_arcsec",
        nullable: true,
        unit: "arcsec",
        ucd: "instr.obsty.seeing",
        description: "median FWHM of good stars",
        fill: Fill::F64(|r| r.fwhm_arcsec),
    },
    Column {
        name: "ellipticity",
        nullable: true,
        unit: "",
        ucd: "src.ellipticity",
        description: "median 1 - b/a of good stars",
        fill: Fill::F64(|r| r.ellipticity),
    },
    Column {
        name: "n_sources",
        nullable: false,
        unit: "",
        ucd: "meta.number",
        description: "number of detected sources",
        fill: Fill::I64(|r| Some(r.n_sources)),
    },
    Column {
        name: "zero_point",
        nullable: true,
        unit: "mag",
        ucd: "phot.mag;arith.zp",
        description: "photometric zero point (MAGZERO/MAGZPT)",
        fill: Fill::F64(|r| r.zero_point),
    },
    Column {
        name: "limiting_mag",
        nullable: true,
        unit: "mag",
        ucd: "phot.mag;stat.max",
        description: "5-sigma point-source limiting magnitude",
        fill: Fill::F64(|r| r.limiting_mag),
    },
    Column {
        name: "aperture_radii",
        nullable: false,
        unit: "pix",
        ucd: "",
        description: "radii of flux_aper",
        fill: Fill::List(|r| Some(r.aperture_radii.as_slice())),
    },
    Column {
        name: "cosmic_ray_pixels",
        nullable: true,
        unit: "",
        ucd: "meta.number",
        description: "pixels flagged and cleaned as cosmic-ray hits (L.A.Cosmic)",
        fill: Fill::I64(|r| Some(r.cosmic_ray_pixels)),
    },
    Column {
        name: "calib_bias",
        nullable: true,
        unit: "",
        ucd: "meta.file;meta.calibLevel",
        description: "master bias applied (calib build file name)",
        fill: Fill::Str(|r| r.calib_bias.as_deref()),
    },
    Column {
        name: "calib_dark",
        nullable: true,
        unit: "",
        ucd: "meta.file;meta.calibLevel",
        description: "master dark applied",
        fill: Fill::Str(|r| r.calib_dark.as_deref()),
    },
    Column {
        name: "calib_flat",
        nullable: true,
        unit: "",
        ucd: "meta.file;meta.calibLevel",
        description: "master flat applied",
        fill: Fill::Str(|r| r.calib_flat.as_deref()),
    },
    Column {
        name: "pipeline_version",
        nullable: false,
        unit: "",
        ucd: "meta.version",
        description: "astropipe version",
        fill: Fill::Str(|r| Some(r.pipeline_version.as_str())),
    },
    Column {
        name: "processed_at",
        nullable: false,
        unit: "",
        ucd: "time.processing",
        description: "when the HDU was processed",
        fill: Fill::Ts(|r| Some(r.processed_at_us)),
    },
    Column {
        name: "header",
        nullable: false,
        unit: "",
        ucd: "meta.fits",
        description: "all header cards as JSON",
        fill: Fill::Str(|r| Some(r.header_json.as_str())),
    },
];

/// The columns of `sources`: one row per detection.
pub static SOURCE_COLUMNS: &[Column<SourceRow>] = &[
    Column {
        name: "source_id",
        nullable: false,
        unit: "",
        ucd: "meta.id;meta.main",
        description: "unique and stable: <exposure_id hex>-<number>",
        fill: Fill::Str(|r| Some(r.source_id.as_str())),
    },
    Column {
        name: "exposure_id",
        nullable: false,
        unit: "",
        ucd: "meta.id;obs",
        description: "the exposure the source was detected on",
        fill: Fill::I64(|r| Some(r.exposure_id)),
    },
    Column {
        name: "ra",
        nullable: true,
        unit: "deg",
        ucd: "pos.eq.ra;meta.main",
        description: "ICRS right ascension",
        fill: Fill::F64(|r| r.ra),
    },
    Column {
        name: "dec",
        nullable: true,
        unit: "deg",
        ucd: "pos.eq.dec;meta.main",
        description: "ICRS declination",
        fill: Fill::F64(|r| r.dec),
    },
    Column {
        name: "ra_err",
        nullable: true,
        unit: "arcsec",
        ucd: "stat.error;pos.eq.ra",
        description: "1-sigma error of ra * cos(dec)",
        fill: Fill::F64(|r| r.ra_err),
    },
    Column {
        name: "dec_err",
        nullable: true,
        unit: "arcsec",
        ucd: "stat.error;pos.eq.dec",
        description: "1-sigma error of dec",
        fill: Fill::F64(|r| r.dec_err),
    },
    Column {
        name: "x",
        nullable: false,
        unit: "pix",
        ucd: "pos.cartesian.x;instr.det",
        description: "0-based barycentre column",
        fill: Fill::F64(|r| Some(r.x)),
    },
    Column {
        name: "y",
        nullable: false,
        unit: "pix",
        ucd: "pos.cartesian.y;instr.det",
        description: "0-based barycentre row",
        fill: Fill::F64(|r| Some(r.y)),
    },
    Column {
        name: "x_win",
        nullable: true,
        unit: "pix",
        ucd: "pos.cartesian.x;instr.det;stat.fit",
        description: "0-based windowed centroid column (SExtractor XWIN; ra/dec come from it)",
        fill: Fill::F64(|r| Some(r.x_win)),
    },
    Column {
        name: "y_win",
        nullable: true,
        unit: "pix",
        ucd: "pos.cartesian.y;instr.det;stat.fit",
        description: "0-based windowed centroid row (SExtractor YWIN)",
        fill: Fill::F64(|r| Some(r.y_win)),
    },
    Column {
        name: "a",
        nullable: false,
        unit: "pix",
        ucd: "phys.size.smajAxis",
        description: "semi-major axis (second moments)",
        fill: Fill::F64(|r| Some(r.a)),
    },
    Column {
        name: "b",
        nullable: false,
        unit: "pix",
        ucd: "phys.size.sminAxis",
        description: "semi-minor axis",
        fill: Fill::F64(|r| Some(r.b)),
    },
    Column {
        name: "theta",
        nullable: false,
        unit: "deg",
        ucd: "pos.posAng",
        description: "major axis angle, counter-clockwise from +x",
        fill: Fill::F64(|r| Some(r.theta)),
    },
    Column {
        name: "flux",
        nullable: false,
        unit: "adu",
        ucd: "phot.flux;meta.main",
        description: "best total flux (AUTO)",
        fill: Fill::F64(|r| Some(r.flux_auto)),
    },
    Column {
        name: "flux_err",
        nullable: false,
        unit: "adu",
        ucd: "stat.error;phot.flux",
        description: "error of flux",
        fill: Fill::F64(|r| Some(r.flux_auto_err)),
    },
    Column {
        name: "flux_auto",
        nullable: false,
        unit: "adu",
        ucd: "phot.flux",
        description: "flux in the Kron (AUTO) aperture",
        fill: Fill::F64(|r| Some(r.flux_auto)),
    },
    Column {
        name: "flux_auto_err",
        nullable: false,
        unit: "adu",
        ucd: "stat.error;phot.flux",
        description: "error of flux_auto",
        fill: Fill::F64(|r| Some(r.flux_auto_err)),
    },
    Column {
        name: "flux_aper",
        nullable: false,
        unit: "adu",
        ucd: "phot.flux",
        description: "fluxes in circular apertures (radii in exposures.aperture_radii)",
        fill: Fill::List(|r| Some(r.flux_aper.as_slice())),
    },
    Column {
        name: "flux_aper_err",
        nullable: false,
        unit: "adu",
        ucd: "stat.error;phot.flux",
        description: "errors of flux_aper",
        fill: Fill::List(|r| Some(r.flux_aper_err.as_slice())),
    },
    Column {
        name: "flux_iso",
        nullable: false,
        unit: "adu",
        ucd: "phot.flux",
        description: "isophotal flux",
        fill: Fill::F64(|r| Some(r.flux_iso)),
    },
    Column {
        name: "mag_auto",
        nullable: true,
        unit: "mag",
        ucd: "phot.mag",
        description: "AB magnitude of flux_auto, when a zero point is known",
        fill: Fill::F64(|r| r.mag_auto),
    },
    Column {
        name: "mag_auto_err",
        nullable: true,
        unit: "mag",
        ucd: "stat.error;phot.mag",
        description: "error of mag_auto",
        fill: Fill::F64(|r| r.mag_auto_err),
    },
    Column {
        name: "kron_radius",
        nullable: false,
        unit: "",
        ucd: "",
        description: "Kron radius in units of a, b",
        fill: Fill::F64(|r| Some(r.kron_radius)),
    },
    Column {
        name: "fwhm",
        nullable: true,
        unit: "pix",
        ucd: "phys.angSize",
        description: "full width at half maximum",
        fill: Fill::F64(|r| r.fwhm),
    },
    Column {
        name: "ellipticity",
        nullable: true,
        unit: "",
        ucd: "src.ellipticity",
        description: "1 - b/a",
        fill: Fill::F64(|r| r.ellipticity),
    },
    Column {
        name: "peak",
        nullable: false,
        unit: "adu",
        ucd: "phot.flux;stat.max",
        description: "highest background-subtracted pixel",
        fill: Fill::F64(|r| Some(r.peak)),
    },
    Column {
        name: "background",
        nullable: false,
        unit: "adu",
        ucd: "instr.skyLevel",
        description: "background at the source",
        fill: Fill::F64(|r| Some(r.background)),
    },
    Column {
        name: "npix",
        nullable: false,
        unit: "pix",
        ucd: "phys.area",
        description: "isophotal area in pixels",
        fill: Fill::I32(|r| Some(r.npix)),
    },
    Column {
        name: "snr",
        nullable: true,
        unit: "",
        ucd: "stat.snr",
        description: "flux / flux_err",
        fill: Fill::F64(|r| r.snr),
    },
    Column {
        name: "flags",
        nullable: false,
        unit: "",
        ucd: "meta.code.qual",
        description: "SExtractor flag bits (1..128) + astropipe bits (256 no WCS, 512 cosmic ray, 1024 bad pixels)",
        fill: Fill::I32(|r| Some(r.flags)),
    },
    Column {
        name: "mjd_obs",
        nullable: true,
        unit: "d",
        ucd: "time.epoch;obs",
        description: "start of the exposure, MJD",
        fill: Fill::F64(|r| r.mjd_obs),
    },
    Column {
        name: "filter",
        nullable: true,
        unit: "",
        ucd: "instr.filter",
        description: "filter of the exposure",
        fill: Fill::Str(|r| r.filter.as_deref()),
    },
    Column {
        name: HEALPIX_29,
        nullable: true,
        unit: "",
        ucd: "pos.healpix",
        description: "NESTED HEALPix index at order 29 (HATS spatial index)",
        fill: Fill::I64(|r| r.healpix_29),
    },
];

/// Schema of `exposures`.
pub static EXPOSURES: LazyLock<SchemaRef> = LazyLock::new(|| schema_of(EXPOSURE_COLUMNS));

/// Schema of `sources`.
pub static SOURCES: LazyLock<SchemaRef> = LazyLock::new(|| schema_of(SOURCE_COLUMNS));

/// Builds an `exposures` batch.
pub fn exposures_batch(rows: &[ExposureRow]) -> arrow::error::Result<RecordBatch> {
    batch_of(EXPOSURE_COLUMNS, &EXPOSURES, rows)
}

/// Builds a `sources` batch.
pub fn sources_batch(rows: &[SourceRow]) -> arrow::error::Result<RecordBatch> {
    batch_of(SOURCE_COLUMNS, &SOURCES, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Float64Array};
    use arrow::datatypes::Float64Type;

    #[test]
    fn each_column_is_filled_from_its_own_field() {
        let mut names = std::collections::HashSet::new();
        for c in SOURCE_COLUMNS {
            assert!(names.insert(c.name), "{} twice", c.name);
        }
        let row = SourceRow {
            source_id: "s".into(),
            x: 1.0,
            y: 2.0,
            x_win: 3.0,
            y_win: 4.0,
            flux_auto: 5.0,
            flux_auto_err: 6.0,
            flux_iso: 7.0,
            peak: 8.0,
            flux_aper: vec![9.0, 10.0],
            ..Default::default()
        };
        let b = sources_batch(std::slice::from_ref(&row)).unwrap();
        let f = |name: &str| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>()
                .value(0)
        };
        assert_eq!(
            [
                f("x"),
                f("y"),
                f("x_win"),
                f("y_win"),
                f("flux_iso"),
                f("peak")
            ],
            [1.0, 2.0, 3.0, 4.0, 7.0, 8.0]
        );
        // `flux` is the AUTO flux, `flux_err` its error.
        assert_eq!((f("flux"), f("flux_err")), (5.0, 6.0));
        assert_eq!((f("flux_auto"), f("flux_auto_err")), (5.0, 6.0));
        let aper = b
            .column_by_name("flux_aper")
            .unwrap()
            .as_list::<i32>()
            .value(0);
        let aper = aper.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(aper.values().to_vec(), vec![9.0, 10.0]);
        assert_eq!(b.schema().fields().len(), SOURCE_COLUMNS.len());
        assert_eq!(EXPOSURES.fields().len(), EXPOSURE_COLUMNS.len());
    }
}

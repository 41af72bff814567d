//! `ivoa.ObsCore` (ObsCore 1.1, every mandatory column) as a view over `exposures`: one row
//! per processed image plane, whose `access_url` serves the original FITS file
//! (`GET /v1/exposures/{exposure_id}/file`, same auth as queries). The view is planned against
//! the `exposures` table the session serves at the moment of the query, so it follows catalog
//! refreshes.
//!
//! | column | from |
//! | --- | --- |
//! | `dataproduct_type`, `calib_level` | `'image'`, 1 (the file as the telescope wrote it) |
//! | `obs_collection`, `obs_id`, `obs_publisher_did` | `'astropipe'`, `exposure_id`, `ivo://astropipe/exposures?<id>` |
//! | `access_url`, `access_format`, `access_estsize` | the file route, `application/fits`, NULL |
//! | `target_name`, `facility_name`, `instrument_name` | `object`, `telescope`, `instrument` |
//! | `s_ra`, `s_dec`, `s_fov`, `s_region`, `s_resolution`, `s_xel1/2` | the pointing, the footprint's diameter and polygon, the seeing, the image size |
//! | `t_min`, `t_max`, `t_exptime`, `t_resolution`, `t_xel` | `mjd_obs`, `mjd_obs + exptime`, `exptime`, `exptime`, 1 |
//! | `em_min`, `em_max`, `em_xel` | the filter's band for common photometric systems (SDSS/LSST ugrizy, Johnson–Cousins UBVRI, 2MASS JHK), else NULL; 1 |
//! | `o_ucd`, `em_res_power`, `pol_states`, `pol_xel` | `phot.count`, NULL, NULL, NULL |

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use astropipe_udfs::geometry::Geometry;
use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::Result;
use datafusion::common::metadata::FieldMetadata;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TableProviderFilterPushDown, TableType, Volatility, cast, col, lit,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The schema the view lives in (`ivoa.ObsCore`, any case unquoted).
pub const SCHEMA: &str = "ivoa";
/// The view's name.
pub const TABLE: &str = "obscore";

/// (name, type, unit, UCD, utype, description) of every column, in ObsCore 1.1's order.
const COLUMNS: &[(&str, DataType, &str, &str, &str, &str)] = &[
    (
        "dataproduct_type",
        DataType::Utf8,
        "",
        "meta.code.class",
        "obscore:ObsDataset.dataProductType",
        "Data product type (image)",
    ),
    (
        "calib_level",
        DataType::Int16,
        "",
        "meta.code;obs.calib",
        "obscore:ObsDataset.calibLevel",
        "Calibration level: 1, the file as written by the instrument",
    ),
    (
        "obs_collection",
        DataType::Utf8,
        "",
        "meta.id",
        "obscore:DataID.Collection",
        "Name of the data collection",
    ),
    (
        "obs_id",
        DataType::Utf8,
        "",
        "meta.id",
        "obscore:DataID.observationID",
        "Observation identifier (the exposure id)",
    ),
    (
        "obs_publisher_did",
        DataType::Utf8,
        "",
        "meta.ref.ivoid",
        "obscore:Curation.PublisherDID",
        "Dataset identifier given by the publisher",
    ),
    (
        "access_url",
        DataType::Utf8,
        "",
        "meta.ref.url",
        "obscore:Access.Reference",
        "URL of the original FITS file",
    ),
    (
        "access_format",
        DataType::Utf8,
        "",
        "meta.code.mime",
        "obscore:Access.Format",
        "Content format of the file",
    ),
    (
        "access_estsize",
        DataType::Int64,
        "kbyte",
        "phys.size;meta.file",
        "obscore:Access.Size",
        "Estimated size of the file",
    ),
    (
        "target_name",
        DataType::Utf8,
        "",
        "meta.id;src",
        "obscore:Target.Name",
        "Object of interest (FITS OBJECT)",
    ),
    (
        "s_ra",
        DataType::Float64,
        "deg",
        "pos.eq.ra",
        "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
        "Central right ascension, ICRS",
    ),
    (
        "s_dec",
        DataType::Float64,
        "deg",
        "pos.eq.dec",
        "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2",
        "Central declination, ICRS",
    ),
    (
        "s_fov",
        DataType::Float64,
        "deg",
        "phys.angSize;instr.fov",
        "obscore:Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
        "Diameter of the covered region",
    ),
    (
        "s_region",
        DataType::Utf8,
        "",
        "pos.outline;obs.field",
        "obscore:Char.SpatialAxis.Coverage.Support.Area",
        "Sky region covered by the image (polygon)",
    ),
    (
        "s_resolution",
        DataType::Float64,
        "arcsec",
        "pos.angResolution",
        "obscore:Char.SpatialAxis.Resolution.Refval.value",
        "Spatial resolution (seeing FWHM)",
    ),
    (
        "s_xel1",
        DataType::Int64,
        "",
        "meta.number",
        "obscore:Char.SpatialAxis.numBins1",
        "Number of pixels along the first axis",
    ),
    (
        "s_xel2",
        DataType::Int64,
        "",
        "meta.number",
        "obscore:Char.SpatialAxis.numBins2",
        "Number of pixels along the second axis",
    ),
    (
        "t_min",
        DataType::Float64,
        "d",
        "time.start;obs.exposure",
        "obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime",
        "Start time (MJD)",
    ),
    (
        "t_max",
        DataType::Float64,
        "d",
        "time.end;obs.exposure",
        "obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime",
        "Stop time (MJD)",
    ),
    (
        "t_exptime",
        DataType::Float64,
        "s",
        "time.duration;obs.exposure",
        "obscore:Char.TimeAxis.Coverage.Support.Extent",
        "Exposure time",
    ),
    (
        "t_resolution",
        DataType::Float64,
        "s",
        "time.resolution",
        "obscore:Char.TimeAxis.Resolution.Refval.value",
        "Temporal resolution",
    ),
    (
        "t_xel",
        DataType::Int64,
        "",
        "meta.number",
        "obscore:Char.TimeAxis.numBins",
        "Number of time samples",
    ),
    (
        "em_min",
        DataType::Float64,
        "m",
        "em.wl;stat.min",
        "obscore:Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit",
        "Lower bound of the filter's band (vacuum wavelength)",
    ),
    (
        "em_max",
        DataType::Float64,
        "m",
        "em.wl;stat.max",
        "obscore:Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit",
        "Upper bound of the filter's band (vacuum wavelength)",
    ),
    (
        "em_res_power",
        DataType::Float64,
        "",
        "spect.resolution",
        "obscore:Char.SpectralAxis.Resolution.ResolPower.refVal",
        "Spectral resolving power",
    ),
    (
        "em_xel",
        DataType::Int64,
        "",
        "meta.number",
        "obscore:Char.SpectralAxis.numBins",
        "Number of spectral samples",
    ),
    (
        "o_ucd",
        DataType::Utf8,
        "",
        "meta.ucd",
        "obscore:Char.ObservableAxis.ucd",
        "UCD of the observable",
    ),
    (
        "pol_states",
        DataType::Utf8,
        "",
        "meta.code;phys.polarization",
        "obscore:Char.PolarizationAxis.stateList",
        "Polarisation states",
    ),
    (
        "pol_xel",
        DataType::Int64,
        "",
        "meta.number",
        "obscore:Char.PolarizationAxis.numBins",
        "Number of polarisation samples",
    ),
    (
        "facility_name",
        DataType::Utf8,
        "",
        "meta.id;instr.tel",
        "obscore:Provenance.ObsConfig.Facility.name",
        "Telescope (FITS TELESCOP)",
    ),
    (
        "instrument_name",
        DataType::Utf8,
        "",
        "meta.id;instr",
        "obscore:Provenance.ObsConfig.Instrument.name",
        "Instrument (FITS INSTRUME)",
    ),
];

/// The view's columns as Arrow fields (units, UCDs, utypes, descriptions as metadata; the
/// region STC-S text of ADQL type REGION, `xtype="adql:REGION"`, as ObsCore has it).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|(name, dt, unit, ucd, utype, desc)| {
                let xtype = (*name == "s_region").then_some("adql:REGION");
                Field::new(*name, dt.clone(), true)
                    .with_metadata(metadata(unit, ucd, utype, desc, xtype))
            })
            .collect::<Vec<_>>(),
    ))
}

fn metadata(
    unit: &str,
    ucd: &str,
    utype: &str,
    desc: &str,
    xtype: Option<&str>,
) -> std::collections::HashMap<String, String> {
    // Every key present, empty where the view declares nothing: the view's metadata then
    // replaces the exposure column's (naxis1's unit) and the plan's schema is the table's.
    let mut md = std::collections::HashMap::new();
    for (k, v) in [
        ("unit", unit),
        ("ucd", ucd),
        ("utype", utype),
        ("description", desc),
    ] {
        md.insert(k.to_string(), v.to_string());
    }
    if let Some(x) = xtype {
        md.insert("xtype".to_string(), x.to_string());
    }
    // Every text column of the view holds ASCII (identifiers, FITS header values, URLs).
    md.insert("votable.ascii".to_string(), "true".to_string());
    md
}

/// What a helper computes from an exposure row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Helper {
    /// The footprint as an STC-S polygon.
    Region,
    /// The footprint's diameter: twice the largest centre–corner distance.
    Fov,
    /// The filter's band edges, metres.
    BandMin,
    BandMax,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HelperFn {
    helper: Helper,
    signature: Signature,
}

/// (min, max) vacuum wavelength in metres of a common filter name.
pub fn band(filter: &str) -> Option<(f64, f64)> {
    let f = filter.trim();
    let last = f
        .rsplit(['-', '_', ' ', '.'])
        .next()
        .unwrap_or(f)
        .trim_end_matches('\'');
    let key = if last.len() == 1 { last } else { f };
    Some(match key {
        "u" => (3.0e-7, 4.0e-7),
        "g" => (4.0e-7, 5.5e-7),
        "r" => (5.5e-7, 6.9e-7),
        "i" => (6.9e-7, 8.2e-7),
        "z" => (8.2e-7, 9.2e-7),
        "y" | "Y" => (9.2e-7, 1.06e-6),
        "U" => (3.3e-7, 4.0e-7),
        "B" => (3.9e-7, 4.9e-7),
        "V" => (5.0e-7, 5.9e-7),
        "R" => (5.9e-7, 7.3e-7),
        "I" => (7.3e-7, 8.8e-7),
        "J" => (1.1e-6, 1.4e-6),
        "H" => (1.5e-6, 1.8e-6),
        "K" | "Ks" | "KS" => (2.0e-6, 2.4e-6),
        _ => return None,
    })
}

fn list_values(a: &ArrayRef, i: usize) -> Option<Vec<f64>> {
    if a.is_null(i) {
        return None;
    }
    let v = a.as_list::<i32>().value(i);
    let v = v.as_primitive::<Float64Type>();
    Some((0..v.len()).map(|k| v.value(k)).collect())
}

impl ScalarUDFImpl for HelperFn {
    fn name(&self) -> &str {
        match self.helper {
            Helper::Region => "obscore_region",
            Helper::Fov => "obscore_fov",
            Helper::BandMin => "obscore_em_min",
            Helper::BandMax => "obscore_em_max",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.helper {
            Helper::Region => DataType::Utf8,
            _ => DataType::Float64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let out: ArrayRef = match self.helper {
            Helper::Region => Arc::new(
                (0..n)
                    .map(
                        |i| match (list_values(&arrays[0], i), list_values(&arrays[1], i)) {
                            (Some(ra), Some(dec)) if ra.len() == dec.len() && ra.len() >= 3 => {
                                Some(Geometry::Polygon(ra.into_iter().zip(dec).collect()).to_stcs())
                            }
                            _ => None,
                        },
                    )
                    .collect::<StringArray>(),
            ),
            Helper::Fov => {
                let c = |k: usize| arrays[k].as_primitive::<Float64Type>().clone();
                let (ra0, dec0) = (c(2), c(3));
                Arc::new(
                    (0..n)
                        .map(|i| {
                            let (ra, dec) =
                                (list_values(&arrays[0], i)?, list_values(&arrays[1], i)?);
                            if ra0.is_null(i) || dec0.is_null(i) {
                                return None;
                            }
                            let r = ra
                                .iter()
                                .zip(&dec)
                                .map(|(a, d)| {
                                    astropipe_udfs::sphere::ang_sep_deg(
                                        ra0.value(i),
                                        dec0.value(i),
                                        *a,
                                        *d,
                                    )
                                })
                                .fold(0.0, f64::max);
                            (r > 0.0).then_some(2.0 * r)
                        })
                        .collect::<Float64Array>(),
                )
            }
            Helper::BandMin | Helper::BandMax => {
                let s = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
                let s = s.as_string::<i32>();
                Arc::new(
                    (0..n)
                        .map(|i| {
                            if s.is_null(i) {
                                return None;
                            }
                            band(s.value(i)).map(|(lo, hi)| {
                                if self.helper == Helper::BandMin {
                                    lo
                                } else {
                                    hi
                                }
                            })
                        })
                        .collect::<Float64Array>(),
                )
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn helper(h: Helper, args: Vec<Expr>) -> Expr {
    ScalarUDF::from(HelperFn {
        helper: h,
        signature: Signature::any(args.len(), Volatility::Immutable),
    })
    .call(args)
}

/// The view: planned over the `exposures` the session serves when a query runs.
#[derive(Debug)]
pub struct ObsCore {
    public: Arc<dyn SchemaProvider>,
    public_url: String,
    schema: SchemaRef,
}

impl ObsCore {
    fn exprs(&self) -> Vec<Expr> {
        let null = |dt: DataType| cast(lit(datafusion::common::ScalarValue::Null), dt);
        let url = datafusion::functions::string::expr_fn::concat(vec![
            lit(format!("{}/v1/exposures/", self.public_url)),
            col("exposure_id"),
            lit("/file"),
        ]);
        let did = datafusion::functions::string::expr_fn::concat(vec![
            lit("ivo://astropipe/exposures?"),
            col("exposure_id"),
        ]);
        let exptime = cast(col("exptime"), DataType::Float64);
        let values: Vec<Expr> = vec![
            lit("image"),
            lit(1i16),
            lit("astropipe"),
            col("exposure_id"),
            did,
            url,
            lit("application/fits"),
            null(DataType::Int64),
            col("object"),
            col("ra_center"),
            col("dec_center"),
            helper(
                Helper::Fov,
                vec![
                    col("footprint_ra"),
                    col("footprint_dec"),
                    col("ra_center"),
                    col("dec_center"),
                ],
            ),
            helper(
                Helper::Region,
                vec![col("footprint_ra"), col("footprint_dec")],
            ),
            col("fwhm_arcsec"),
            cast(col("naxis1"), DataType::Int64),
            cast(col("naxis2"), DataType::Int64),
            col("mjd_obs"),
            col("mjd_obs") + exptime.clone() / lit(86_400.0),
            exptime.clone(),
            exptime,
            lit(1i64),
            helper(Helper::BandMin, vec![col("filter")]),
            helper(Helper::BandMax, vec![col("filter")]),
            null(DataType::Float64),
            lit(1i64),
            lit("phot.count"),
            null(DataType::Utf8),
            null(DataType::Int64),
            col("telescope"),
            col("instrument"),
        ];
        values
            .into_iter()
            .zip(self.schema.fields())
            .map(|(e, f)| {
                cast(e, f.data_type().clone())
                    .alias_with_metadata(f.name(), Some(FieldMetadata::from(f.metadata().clone())))
            })
            .collect()
    }
}

#[async_trait]
impl TableProvider for ObsCore {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn table_type(&self) -> TableType {
        TableType::View
    }
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(exposures) = self.public.table("exposures").await? else {
            return datafusion::common::plan_err!("ivoa.ObsCore: no exposures table is served");
        };
        let plan = LogicalPlanBuilder::scan("exposures", provider_as_source(exposures), None)?
            .project(self.exprs())?
            .build()?;
        ViewTable::new(plan, None)
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Registers `ivoa.ObsCore` in the serving catalog; `public_url` prefixes `access_url`.
pub fn register(ctx: &SessionContext, public_url: &str) -> Result<()> {
    let Some(cat) = ctx.catalog("astropipe") else {
        return Ok(());
    };
    let Some(public) = cat.schema(super::tap_schema::PUBLIC) else {
        return Ok(());
    };
    let ivoa = Arc::new(MemorySchemaProvider::new());
    ivoa.register_table(
        TABLE.to_string(),
        Arc::new(ObsCore {
            public,
            public_url: public_url.trim_end_matches('/').to_string(),
            schema: schema(),
        }),
    )?;
    cat.register_schema(SCHEMA, ivoa)?;
    Ok(())
}

/// Field metadata of a column by name (TAP_SCHEMA's descriptions of the view).
pub fn column_metadata() -> BTreeMap<String, std::collections::HashMap<String, String>> {
    schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.metadata().clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn filter_bands() {
        assert_eq!(super::band("r"), Some((5.5e-7, 6.9e-7)));
        assert_eq!(super::band("SDSS-r'"), Some((5.5e-7, 6.9e-7)));
        assert_eq!(super::band("V"), Some((5.0e-7, 5.9e-7)));
        assert_eq!(super::band("Ks"), Some((2.0e-6, 2.4e-6)));
        assert_eq!(super::band("F606W"), None);
        assert_eq!(super::schema().fields().len(), 30);
    }
}

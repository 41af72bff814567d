//! `--table NAME=URI`: any HATS catalog or Parquet dataset, local or on S3, as a [`SkyTable`].
//!
//! What is at URI decides (first match wins):
//! 1. `collection.properties` — a HATS collection: its primary catalog, with its default margin
//!    cache (for cross-matching);
//! 2. `hats.properties` — a HATS catalog: the partition files under `dataset/`
//!    (`Norder=K/Dir=D/Npix=N.parquet`, or `Npix=N/` directories of files), each known to hold
//!    exactly its pixel's `_healpix_29` range; positions from `hats_col_ra`/`hats_col_dec`;
//! 3. a `.parquet` file, or a directory of them (searched recursively) — a plain dataset; if it
//!    has `ra`, `dec` and `_healpix_29` columns it prunes by region too, with each file's index
//!    range read from its footer statistics.
//!
//! Catalogs from hats-import have one row group per file; their pages are pruned by DataFusion
//! from the page index when the files carry one, and whole files are always skipped by pixel.

use super::table::{SkyFile, SkyTable, Spatial};
use crate::catalog::hats::{INDEX_ORDER, Pixel};
use crate::storage::{Location, StorageError};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::file::statistics::Statistics;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("--table {spec:?}: expected NAME=URI")]
    Spec { spec: String },
    #[error("table {name}: {source}")]
    Storage {
        name: String,
        #[source]
        source: StorageError,
    },
    #[error("table {name} ({uri}): {message}")]
    Invalid {
        name: String,
        uri: String,
        message: String,
    },
}

/// Parses `NAME=URI`.
pub fn parse_spec(spec: &str) -> Result<(String, String), DiscoverError> {
    let (name, uri) = spec
        .split_once('=')
        .ok_or_else(|| DiscoverError::Spec { spec: spec.into() })?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid || uri.trim().is_empty() {
        return Err(DiscoverError::Spec { spec: spec.into() });
    }
    Ok((name.to_ascii_lowercase(), uri.trim().to_string()))
}

struct Ctx<'a> {
    name: &'a str,
    uri: &'a str,
    loc: Location,
}

impl Ctx<'_> {
    fn invalid(&self, message: impl Into<String>) -> DiscoverError {
        DiscoverError::Invalid {
            name: self.name.into(),
            uri: self.uri.into(),
            message: message.into(),
        }
    }

    async fn text(&self, rel: &str) -> Option<String> {
        let r = self.loc.store.get(&self.loc.path(rel)).await.ok()?;
        String::from_utf8(r.bytes().await.ok()?.to_vec()).ok()
    }

    async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>, DiscoverError> {
        let prefix = self.loc.path(rel);
        let mut v: Vec<ObjectMeta> = self
            .loc
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.invalid(format!("listing: {e}")))?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    fn store_url(&self) -> Result<ObjectStoreUrl, DiscoverError> {
        ObjectStoreUrl::parse(self.loc.store_url.as_str()).map_err(|e| self.invalid(e.to_string()))
    }
}

fn properties(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Opens the table at `uri`, together with the location its files are relative to.
pub async fn discover(name: &str, uri: &str) -> Result<(Location, SkyTable), DiscoverError> {
    let storage = |source| DiscoverError::Storage {
        name: name.into(),
        source,
    };
    // A single local file: its directory is the location.
    if !uri.contains("://") && std::path::Path::new(uri).is_file() {
        let p = std::path::Path::new(uri);
        let dir = p
            .parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    d
                }
            })
            .unwrap_or(std::path::Path::new("."));
        let loc = Location::open_existing(&dir.display().to_string()).map_err(storage)?;
        let file = p
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let cx = Ctx { name, uri, loc };
        let metas = cx
            .list("")
            .await?
            .into_iter()
            .filter(|m| m.location.filename() == Some(file.as_str()))
            .collect();
        let table = plain(&cx, metas).await?;
        return Ok((cx.loc, table));
    }
    let loc = Location::open_existing(uri).map_err(storage)?;
    let cx = Ctx { name, uri, loc };
    if let Some(text) = cx.text("collection.properties").await {
        let p = properties(&text);
        let primary = p
            .get("hats_primary_table_url")
            .ok_or_else(|| cx.invalid("collection.properties has no hats_primary_table_url"))?;
        let mut table = hats(&cx, primary, false).await?;
        if let Some(m) = p
            .get("default_margin")
            .or(p.get("all_margins"))
            .and_then(|m| m.split_whitespace().next())
        {
            let margin = hats(&cx, m, true).await?;
            let mp = properties(
                &cx.text(&format!("{m}/hats.properties"))
                    .await
                    .unwrap_or_default(),
            );
            if let Some(threshold) = mp
                .get("hats_margin_threshold")
                .and_then(|t| t.parse::<f64>().ok())
            {
                table.margin = Some((Arc::new(margin), threshold));
            }
        }
        return Ok((cx.loc, table));
    }
    if cx.text("hats.properties").await.is_some() {
        let table = hats(&cx, "", false).await?;
        return Ok((cx.loc, table));
    }
    let metas = cx.list("").await?;
    let table = plain(&cx, metas).await?;
    Ok((cx.loc, table))
}

/// The pixel of a HATS partition path (`.../Norder=K/Dir=D/Npix=N.parquet` or
/// `.../Norder=K/Dir=D/Npix=N/part.parquet`).
pub fn pixel_of_path(path: &str) -> Option<Pixel> {
    let mut order = None;
    let mut pixel = None;
    for seg in path.split('/') {
        if let Some(v) = seg.strip_prefix("Norder=") {
            order = v.parse::<u8>().ok();
        }
        if let Some(v) = seg.strip_prefix("Npix=") {
            pixel = v.trim_end_matches(".parquet").parse::<u64>().ok();
        }
    }
    let (order, pixel) = (order?, pixel?);
    (order <= INDEX_ORDER && pixel < 12 * (1u64 << (2 * order as u32)))
        .then_some(Pixel { order, pixel })
}

fn relative<'a>(loc: &Location, full: &'a str) -> &'a str {
    let root = loc.root.as_ref();
    full.strip_prefix(root)
        .map(|s| s.trim_start_matches('/'))
        .unwrap_or(full)
}

async fn schema_of(
    cx: &Ctx<'_>,
    meta: &ObjectMeta,
) -> Result<(SchemaRef, Arc<parquet::file::metadata::ParquetMetaData>), DiscoverError> {
    let md = DFParquetMetadata::new(cx.loc.store.as_ref(), meta)
        .fetch_metadata()
        .await
        .map_err(|e| cx.invalid(format!("{}: {e}", meta.location)))?;
    let fm = md.file_metadata();
    let schema =
        parquet::arrow::parquet_to_arrow_schema(fm.schema_descr(), fm.key_value_metadata())
            .map_err(|e| cx.invalid(format!("{}: {e}", meta.location)))?;
    Ok((Arc::new(schema), md))
}

fn spatial_of(schema: &SchemaRef, ra: &str, dec: &str, healpix: &str) -> Option<Spatial> {
    let ok = |n: &str, t: &[DataType]| {
        schema
            .field_with_name(n)
            .ok()
            .is_some_and(|f| t.contains(f.data_type()))
    };
    (ok(ra, &[DataType::Float64, DataType::Float32])
        && ok(dec, &[DataType::Float64, DataType::Float32])
        && ok(healpix, &[DataType::Int64]))
    .then(|| Spatial {
        ra: ra.into(),
        dec: dec.into(),
        healpix: healpix.into(),
    })
}

/// A HATS catalog at `dir` (relative to the location).
async fn hats(cx: &Ctx<'_>, dir: &str, margin: bool) -> Result<SkyTable, DiscoverError> {
    let base = |rel: &str| {
        if dir.is_empty() {
            rel.to_string()
        } else {
            format!("{dir}/{rel}")
        }
    };
    let p = properties(&cx.text(&base("hats.properties")).await.unwrap_or_default());
    let ra = p.get("hats_col_ra").cloned().unwrap_or_else(|| "ra".into());
    let dec = p
        .get("hats_col_dec")
        .cloned()
        .unwrap_or_else(|| "dec".into());
    let healpix = p
        .get("hats_col_healpix")
        .cloned()
        .unwrap_or_else(|| crate::catalog::schema::HEALPIX_29.into());
    let metas = cx.list(&base("dataset")).await?;
    let mut files = Vec::new();
    let mut common: Option<ObjectMeta> = None;
    for m in metas {
        let full = m.location.to_string();
        if full.ends_with("/_common_metadata") {
            common = Some(m);
            continue;
        }
        if !full.ends_with(".parquet") {
            continue;
        }
        let Some(px) = pixel_of_path(relative(&cx.loc, &full)) else {
            continue;
        };
        let (lo, hi) = px.index_range();
        // Margin files hold rows *around* their pixel: no range known.
        files.push((m, (!margin).then_some((lo, hi - 1)), px));
    }
    if files.is_empty() {
        return Err(cx.invalid(format!("no partition files under {}", base("dataset"))));
    }
    let schema_from = common.as_ref().unwrap_or(&files[0].0);
    let (schema, _) = schema_of(cx, schema_from).await?;
    let spatial = spatial_of(&schema, &ra, &dec, &healpix);
    files.sort_by_key(|f| f.2.index_range().0);
    Ok(SkyTable {
        name: cx.name.into(),
        schema,
        store_url: cx.store_url()?,
        files: files
            .into_iter()
            .map(|(m, range, px)| SkyFile {
                path: m.location,
                size: m.size,
                range,
                pixel: Some(px),
            })
            .collect(),
        spatial,
        margin: None,
    })
}

/// A plain Parquet dataset: every `.parquet` file listed.
async fn plain(cx: &Ctx<'_>, metas: Vec<ObjectMeta>) -> Result<SkyTable, DiscoverError> {
    let metas: Vec<ObjectMeta> = metas
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .collect();
    let Some(first) = metas.first() else {
        return Err(cx.invalid("no .parquet files"));
    };
    let (schema, _) = schema_of(cx, first).await?;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let find = |want: &str| {
        names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(want))
            .map(|n| n.to_string())
    };
    let spatial = match (
        find("ra"),
        find("dec"),
        find(crate::catalog::schema::HEALPIX_29),
    ) {
        (Some(ra), Some(dec), Some(hp)) => spatial_of(&schema, &ra, &dec, &hp),
        _ => None,
    };
    let mut files = Vec::with_capacity(metas.len());
    for m in metas {
        let range = match &spatial {
            Some(sp) => {
                let (s, md) = schema_of(cx, &m).await?;
                if s.fields().len() != schema.fields().len() {
                    return Err(cx.invalid(format!("{} has a different schema", m.location)));
                }
                index_range(&md, &sp.healpix)
            }
            None => None,
        };
        files.push(SkyFile {
            path: m.location,
            size: m.size,
            range,
            pixel: None,
        });
    }
    files.sort_by_key(|f| f.range.map(|r| r.0));
    Ok(SkyTable {
        name: cx.name.into(),
        schema,
        store_url: cx.store_url()?,
        files,
        spatial,
        margin: None,
    })
}

/// `[min, max]` of an Int64 column over a file's row groups, from the footer statistics.
fn index_range(md: &parquet::file::metadata::ParquetMetaData, column: &str) -> Option<(i64, i64)> {
    let idx = md
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == column)?;
    let mut out: Option<(i64, i64)> = None;
    for rg in md.row_groups() {
        match rg.column(idx).statistics()? {
            Statistics::Int64(s) => {
                let (lo, hi) = (*s.min_opt()?, *s.max_opt()?);
                out = Some(match out {
                    None => (lo, hi),
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                });
            }
            _ => return None,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_pixel_paths() {
        assert_eq!(
            parse_spec("gaia=s3://b/gaia").unwrap(),
            ("gaia".into(), "s3://b/gaia".into())
        );
        assert!(
            parse_spec("=x").is_err()
                && parse_spec("a b=x").is_err()
                && parse_spec("nope").is_err()
        );
        assert_eq!(
            pixel_of_path("cat/dataset/Norder=3/Dir=0/Npix=700.parquet"),
            Some(Pixel {
                order: 3,
                pixel: 700
            })
        );
        assert_eq!(
            pixel_of_path("dataset/Norder=1/Dir=0/Npix=47/part0.parquet"),
            Some(Pixel {
                order: 1,
                pixel: 47
            })
        );
        assert_eq!(
            pixel_of_path("dataset/Norder=0/Dir=0/Npix=12.parquet"),
            None,
            "no pixel 12 at order 0"
        );
        assert_eq!(pixel_of_path("dataset/other.parquet"), None);
    }
}

//! Step 5: the HATS metadata of the new catalog and of its margin cache —
//! `hats.properties`, `partition_info.csv`, `dataset/_common_metadata` and `_metadata`.

use super::partition::Written;
use super::{CompactError, Compaction, put};
use crate::catalog::commit::{self, FileEntry};
use crate::catalog::hats::{self, Pixel};
use crate::catalog::{SOURCES, SOURCES_MARGIN, schema};
use parquet::file::metadata::ParquetMetaData;

impl Compaction<'_> {
    /// Writes the metadata files; returns the deepest partition order.
    pub(super) async fn write_metadata(
        &mut self,
        parts: &[Pixel],
        closed: &Written,
        margin_closed: &Written,
    ) -> Result<u8, CompactError> {
        let schema_ref = schema::SOURCES.clone();
        // 5. HATS metadata of the catalog and its margin.
        let created = commit::now_rfc3339();
        let max_order = parts.iter().map(|p| p.order).max().unwrap_or(0);
        for (catalog_dir, files, table, primary) in [
            (self.gen_name.clone(), &closed, SOURCES, None),
            (
                self.margin_name.clone(),
                &margin_closed,
                SOURCES_MARGIN,
                Some((self.gen_name.clone(), self.opts.margin_arcsec)),
            ),
        ] {
            let rows: u64 = files.iter().map(|f| f.1.rows).sum();
            for (_, c) in files.iter() {
                self.add.push(c.entry(table));
            }
            let base = format!("{SOURCES}/{catalog_dir}");
            let pixels: Vec<Pixel> = files.iter().map(|f| f.0).collect();
            let sky_fraction = pixels
                .iter()
                .map(|p| 1.0 / (12.0 * 4f64.powi(p.order as i32)))
                .sum::<f64>();
            let bytes: u64 = files.iter().map(|f| f.1.bytes).sum();
            let props = hats::Properties {
                name: if primary.is_some() {
                    format!("{SOURCES}_margin")
                } else {
                    SOURCES.to_string()
                },
                dataproduct_type: if primary.is_some() {
                    "margin"
                } else {
                    "object"
                },
                nrows: rows,
                max_rows: self.opts.max_rows,
                max_order,
                sky_fraction,
                est_size_kb: bytes.div_ceil(1024),
                primary,
            };
            let mut meta: Vec<(String, bytes::Bytes)> = vec![
                (
                    format!("{base}/hats.properties"),
                    bytes::Bytes::from(props.render(&created)),
                ),
                (
                    format!("{base}/partition_info.csv"),
                    bytes::Bytes::from(hats::partition_info_csv(&pixels)),
                ),
                (
                    format!("{base}/dataset/_common_metadata"),
                    hats::common_metadata(&schema_ref).map_err(|e| CompactError::Write {
                        path: base.clone(),
                        message: e.to_string(),
                    })?,
                ),
            ];
            let parts_md: Vec<(String, ParquetMetaData)> = files
                .iter()
                .map(|f| {
                    (
                        f.0.file_path().trim_start_matches("dataset/").to_string(),
                        f.1.md.clone(),
                    )
                })
                .collect();
            if let Some(m) =
                hats::combined_metadata(&parts_md).map_err(|e| CompactError::Write {
                    path: base.clone(),
                    message: e.to_string(),
                })?
            {
                meta.push((format!("{base}/dataset/_metadata"), m));
            }
            for (rel, bytes) in meta {
                let n = put(self.loc, &rel, bytes).await?;
                self.add.push(FileEntry::meta(SOURCES, rel, n));
            }
            if table == SOURCES {
                self.report.rows = rows;
                self.report.partitions = pixels.len();
            } else {
                self.report.margin_rows = rows;
            }
        }
        self.report.max_order = max_order;
        Ok(max_order)
    }
}

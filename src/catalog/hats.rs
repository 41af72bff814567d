//! The HATS layout (IVOA Note "HATS: Hierarchical Adaptive Tiling Scheme", 2025; what the
//! `hats` and LSDB packages read): HEALPix partitions chosen adaptively so none holds more
//! than `hats_max_rows` rows, stored as `dataset/Norder=K/Dir=D/Npix=N.parquet`, described by
//! `hats.properties`, `partition_info.csv`, `dataset/_common_metadata` and
//! `dataset/_metadata`.
//!
//! astropipe writes each compaction as a new *generation* directory (a complete HATS catalog
//! plus its margin catalog) and points a HATS collection (`collection.properties`) at it, so
//! HATS readers switch from one complete generation to the next, never see a half-written
//! one, and files are never rewritten in place.

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataBuilder, ParquetMetaDataWriter};
use std::collections::BTreeMap;

/// Order of the `_healpix_29` spatial index.
pub const INDEX_ORDER: u8 = 29;

/// A HEALPix pixel (NESTED) at some order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pixel {
    pub order: u8,
    pub pixel: u64,
}

impl Pixel {
    /// The `_healpix_29` range [lo, hi) this pixel covers.
    pub fn index_range(&self) -> (i64, i64) {
        let shift = 2 * (INDEX_ORDER - self.order) as u32;
        (
            (self.pixel << shift) as i64,
            ((self.pixel + 1) << shift) as i64,
        )
    }

    /// Directory number of the HATS layout: `(Npix / 10000) * 10000`.
    pub fn dir(&self) -> u64 {
        self.pixel / 10_000 * 10_000
    }

    /// Path of the partition file relative to the catalog directory.
    pub fn file_path(&self) -> String {
        format!(
            "dataset/Norder={}/Dir={}/Npix={}.parquet",
            self.order,
            self.dir(),
            self.pixel
        )
    }

    /// The pixel at `order` containing a `_healpix_29` index.
    pub fn of_index(index: i64, order: u8) -> Pixel {
        Pixel {
            order,
            pixel: (index as u64) >> (2 * (INDEX_ORDER - order) as u32),
        }
    }
}

/// Adaptive partitioning from a histogram of row counts at `hist_order` (pixel → count):
/// starting from the histogram, sibling quads are merged into their parent while the parent
/// holds at most `max_rows` rows (and all four siblings are mergeable), down to order 0. The
/// result covers every non-empty histogram pixel exactly once.
pub fn alignment(
    histogram: &BTreeMap<u64, u64>,
    hist_order: u8,
    max_rows: u64,
) -> Vec<(Pixel, u64)> {
    // (order, pixel) -> count, starting at the histogram order; `None` marks a node that
    // cannot be merged further (a child exceeded the threshold).
    let mut level: BTreeMap<u64, Option<u64>> =
        histogram.iter().map(|(&p, &c)| (p, Some(c))).collect();
    let mut result: Vec<(Pixel, u64)> = Vec::new();
    let mut order = hist_order;
    while order > 0 {
        let mut parents: BTreeMap<u64, Vec<(u64, Option<u64>)>> = BTreeMap::new();
        for (&p, &c) in &level {
            parents.entry(p >> 2).or_default().push((p, c));
        }
        let mut next: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        for (parent, children) in parents {
            let total: Option<u64> = children.iter().map(|(_, c)| *c).sum();
            match total {
                Some(t) if t <= max_rows => {
                    next.insert(parent, Some(t));
                }
                _ => {
                    // Children become final partitions; the parent is blocked.
                    for (p, c) in children {
                        if let Some(c) = c {
                            result.push((Pixel { order, pixel: p }, c));
                        }
                    }
                    next.insert(parent, None);
                }
            }
        }
        level = next;
        order -= 1;
    }
    for (p, c) in level {
        if let Some(c) = c {
            result.push((Pixel { order: 0, pixel: p }, c));
        }
    }
    result.retain(|(_, c)| *c > 0);
    result.sort_by_key(|(p, _)| p.index_range().0);
    result
}

/// The properties of a HATS catalog (`hats.properties`), in the key order hats writes them.
pub struct Properties {
    pub name: String,
    /// `object` or `margin`.
    pub dataproduct_type: &'static str,
    pub nrows: u64,
    pub max_rows: u64,
    pub max_order: u8,
    pub sky_fraction: f64,
    pub est_size_kb: u64,
    /// For margins: the primary catalog and the threshold in arcseconds.
    pub primary: Option<(String, f64)>,
}

impl Properties {
    pub fn render(&self, created: &str) -> String {
        let mut s = String::from("#HATS catalog\n");
        let mut kv = |k: &str, v: String| s.push_str(&format!("{k}={v}\n"));
        kv("obs_collection", self.name.clone());
        kv("dataproduct_type", self.dataproduct_type.to_string());
        kv("hats_nrows", self.nrows.to_string());
        kv("hats_col_ra", "ra".into());
        kv("hats_col_dec", "dec".into());
        if let Some((primary, threshold)) = &self.primary {
            kv("hats_primary_table_url", primary.clone());
            kv("hats_margin_threshold", format!("{threshold}"));
        }
        kv("hats_npix_suffix", ".parquet".into());
        kv(
            "hats_col_healpix",
            crate::catalog::schema::HEALPIX_29.into(),
        );
        kv("hats_col_healpix_order", INDEX_ORDER.to_string());
        kv("hats_max_rows", self.max_rows.to_string());
        kv("hats_order", self.max_order.to_string());
        kv("moc_sky_fraction", format!("{:.5}", self.sky_fraction));
        kv(
            "hats_builder",
            format!("astropipe v{}", env!("CARGO_PKG_VERSION")),
        );
        kv("hats_creation_date", created.to_string());
        kv("hats_estsize", self.est_size_kb.to_string());
        kv(
            "hats_release_date",
            created.get(..10).unwrap_or(created).to_string(),
        );
        kv("hats_version", "v1.0".into());
        s
    }
}

/// `collection.properties`: the primary catalog and its margin, relative to the collection.
pub fn collection_properties(name: &str, primary: &str, margin: Option<&str>) -> String {
    let mut s =
        format!("#HATS Collection\nobs_collection={name}\nhats_primary_table_url={primary}\n");
    if let Some(m) = margin {
        s.push_str(&format!("all_margins={m}\ndefault_margin={m}\n"));
    }
    s
}

/// `partition_info.csv`.
pub fn partition_info_csv(pixels: &[Pixel]) -> String {
    let mut sorted = pixels.to_vec();
    sorted.sort();
    let mut s = String::from("Norder,Npix\n");
    for p in sorted {
        s.push_str(&format!("{},{}\n", p.order, p.pixel));
    }
    s
}

/// `_common_metadata`: a Parquet file with the schema and no rows.
pub fn common_metadata(schema: &SchemaRef) -> parquet::errors::Result<Bytes> {
    let mut buf = Vec::new();
    let w = ArrowWriter::try_new(&mut buf, schema.clone(), None)?;
    w.close()?;
    Ok(Bytes::from(buf))
}

/// `_metadata`: the footers of all partition files combined, every column chunk carrying the
/// path of its file relative to `dataset/`.
pub fn combined_metadata(
    parts: &[(String, ParquetMetaData)],
) -> parquet::errors::Result<Option<Bytes>> {
    let Some((_, first)) = parts.first() else {
        return Ok(None);
    };
    let file_md = first.file_metadata().clone();
    let mut row_groups = Vec::new();
    let mut rows = 0i64;
    for (path, md) in parts {
        for rg in md.row_groups() {
            let mut b = rg.clone().into_builder();
            let cols: Vec<_> = rg
                .columns()
                .iter()
                .map(|c| {
                    // Page indexes and bloom filters live in the partition files, not here.
                    c.clone()
                        .into_builder()
                        .set_file_path(path.clone())
                        .set_column_index_offset(None)
                        .set_column_index_length(None)
                        .set_offset_index_offset(None)
                        .set_offset_index_length(None)
                        .set_bloom_filter_offset(None)
                        .set_bloom_filter_length(None)
                        .build()
                })
                .collect::<parquet::errors::Result<_>>()?;
            b = b.set_column_metadata(cols);
            rows += rg.num_rows();
            row_groups.push(b.build()?);
        }
    }
    let fm = parquet::file::metadata::FileMetaData::new(
        file_md.version(),
        rows,
        file_md.created_by().map(|s| s.to_string()),
        file_md.key_value_metadata().cloned(),
        file_md.schema_descr_ptr(),
        file_md.column_orders().cloned(),
    );
    let md = ParquetMetaDataBuilder::new(fm)
        .set_row_groups(row_groups)
        .build();
    // A metadata-only Parquet file: the magic, then the footer.
    let mut out = b"PAR1".to_vec();
    let mut body = Vec::new();
    ParquetMetaDataWriter::new(&mut body, &md).finish()?;
    out.extend_from_slice(&body);
    Ok(Some(Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_sky_gets_deeper_orders() {
        // Order-2 histogram: pixel 0 (under base pixel 0) is dense, the rest sparse.
        let mut h = BTreeMap::new();
        h.insert(0u64, 900u64);
        h.insert(1, 10);
        h.insert(2, 10);
        h.insert(3, 10);
        h.insert(20, 5);
        h.insert(100, 7);
        let parts = alignment(&h, 2, 100);
        let orders: Vec<(u8, u64, u64)> =
            parts.iter().map(|(p, c)| (p.order, p.pixel, *c)).collect();
        // The dense quad cannot merge: its members stay at order 2.
        assert!(orders.contains(&(2, 0, 900)));
        assert!(orders.contains(&(2, 1, 10)));
        // Sparse pixels merge up to order 0 (base pixels 1 and 6).
        assert!(orders.contains(&(0, 1, 5)));
        assert!(orders.contains(&(0, 6, 7)));
        let total: u64 = parts.iter().map(|(_, c)| c).sum();
        assert_eq!(total, 942);
        // Ranges are disjoint and sorted.
        for w in parts.windows(2) {
            assert!(w[0].0.index_range().1 <= w[1].0.index_range().0);
        }
    }

    #[test]
    fn combined_metadata_reads_back() {
        use arrow::array::{Int64Array, RecordBatch};
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "_healpix_29",
            DataType::Int64,
            true,
        )]));
        let mut parts = Vec::new();
        for i in 0..3i64 {
            let mut buf = Vec::new();
            let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), None).unwrap();
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![i, i + 1]))],
            )
            .unwrap();
            w.write(&b).unwrap();
            let md = w.close().unwrap();
            parts.push((format!("Norder=0/Dir=0/Npix={i}.parquet"), md));
        }
        let bytes = combined_metadata(&parts).unwrap().unwrap();
        let md = parquet::file::metadata::ParquetMetaDataReader::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional)
            .parse_and_finish(&bytes)
            .unwrap();
        assert_eq!(md.file_metadata().num_rows(), 6);
        assert_eq!(md.row_groups().len(), 3);
        assert_eq!(
            md.row_group(2).column(0).file_path(),
            Some("Norder=0/Dir=0/Npix=2.parquet")
        );
    }

    #[test]
    fn paths_follow_the_hats_layout() {
        let p = Pixel {
            order: 5,
            pixel: 12_345,
        };
        assert_eq!(
            p.file_path(),
            "dataset/Norder=5/Dir=10000/Npix=12345.parquet"
        );
        assert_eq!(Pixel::of_index(p.index_range().0, 5), p);
    }
}

//! Step 1: the row-count histogram of the located sources at `hist_order`, and from it the
//! adaptive HATS partitions (each at most `max_rows` rows).

use super::{CompactError, Compaction, query};
use crate::catalog::hats::{self, Pixel};
use crate::catalog::schema;
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use futures::StreamExt;
use std::collections::BTreeMap;

impl Compaction<'_> {
    pub(super) async fn partitions(&self) -> Result<Vec<Pixel>, CompactError> {
        // 1. Histogram at hist_order, then the adaptive partitions.
        let h = self.opts.hist_order.min(hats::INDEX_ORDER);
        let shift = 2 * (hats::INDEX_ORDER - h) as u32;
        let mut stream = query(
            &self.ctx,
            &format!("SELECT {hp} >> {shift} AS p, count(*) AS n FROM sources WHERE {hp} IS NOT NULL GROUP BY 1", hp = schema::HEALPIX_29),
        )
        .await?;
        let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| CompactError::Query(e.to_string()))?;
            let p = b.column(0).as_primitive::<Int64Type>();
            let n = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                histogram.insert(p.value(i) as u64, n.value(i) as u64);
            }
        }
        let parts: Vec<Pixel> = hats::alignment(&histogram, h, self.opts.max_rows)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        Ok(parts)
    }
}

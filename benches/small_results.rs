//! What encoding a cone's handful of rows costs, per response format: a result of `--rows`
//! rows (default 5) of `id, ra, dec, mag` (with units and UCDs, as the catalog's columns
//! carry them) encoded from start to end — head, rows, ending — `--reps` times (default
//! 20 000). Prints JSON: per format, the median microseconds per response and the bytes.
//! Next to a whole cone over HTTP (~0.6 ms in `benches/cone_vs_q3c.sh`), this is the share
//! result encoding takes.
//!
//! `cargo bench --bench small_results [-- --rows 5 --reps 20000]`

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use astropipe::format::{BatchEncoder, Format};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

fn field(name: &str, t: DataType, unit: &str, ucd: &str) -> Field {
    let mut md = HashMap::new();
    if !unit.is_empty() {
        md.insert("unit".to_string(), unit.to_string());
    }
    md.insert("ucd".to_string(), ucd.to_string());
    Field::new(name, t, true).with_metadata(md)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = arg("--rows").unwrap_or(5);
    let reps = arg("--reps").unwrap_or(20_000);
    let schema = Arc::new(Schema::new(vec![
        field("id", DataType::Int64, "", "meta.id;meta.main"),
        field("ra", DataType::Float64, "deg", "pos.eq.ra;meta.main"),
        field("dec", DataType::Float64, "deg", "pos.eq.dec;meta.main"),
        field("mag", DataType::Float32, "mag", "phot.mag"),
    ]));
    let n = rows as i64;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef,
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| 150.1 + i as f64 * 1e-4),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| 2.2 - i as f64 * 1e-4),
            )),
            Arc::new(Float32Array::from_iter_values(
                (0..n).map(|i| 18.0 + i as f32 * 0.1),
            )),
        ],
    )
    .expect("batch");
    let mut out = Vec::new();
    for (name, format) in [
        ("json", Format::Json),
        ("csv", Format::Csv),
        ("arrow", Format::ArrowIpc),
        ("votable", Format::VOTable),
        ("votable_binary2", Format::VOTableBinary2),
        ("parquet", Format::Parquet),
    ] {
        let mut times = Vec::with_capacity(reps);
        let mut bytes = 0;
        for _ in 0..reps {
            let t = Instant::now();
            let (mut enc, head) = BatchEncoder::new(format, &schema).expect("encoder");
            let body = enc.encode(&batch).expect("encode");
            let end = enc.finish().expect("finish");
            times.push(t.elapsed().as_secs_f64());
            bytes = head.len() + body.len() + end.len();
        }
        times.sort_by(f64::total_cmp);
        out.push(format!(
            "\"{name}\": {{\"median_us\": {:.2}, \"bytes\": {bytes}}}",
            times[times.len() / 2] * 1e6
        ));
    }
    println!("{{\"rows\": {rows}, {}}}", out.join(", "));
}

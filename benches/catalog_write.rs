//! Parquet write timings for `benches/catalog_write_vs_pyarrow.py` (which times
//! `pyarrow.parquet.write_table` on the same rows in the same run and prints the ratio).
//!
//! `cargo bench --bench catalog_write -- --dir DIR [--rows N] [--reps R]`: makes N synthetic
//! `sources` rows sorted by `_healpix_29` (untimed), stores them as DIR/rows.arrow for pyarrow,
//! then times writing them as one Parquet file with the catalog's settings (ZSTD 1, page
//! statistics, 65536-row groups) through the object store, as compaction does:
//!   - `parallel`: the catalog writer (row groups and columns encoded on all cores);
//!   - `serial`: arrow-rs's plain `ArrowWriter` (one thread), for reference.
//!
//! Prints JSON with the median seconds.

use astropipe::catalog::{schema, writer};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets`: nothing to time
    }
    let Some(dir) = arg("--dir").map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench catalog_write -- --dir DIR [--rows N] [--reps R]");
        return;
    };
    let rows: usize = arg("--rows")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let reps: usize = arg("--reps").and_then(|s| s.parse().ok()).unwrap_or(3);
    std::fs::create_dir_all(&dir).expect("bench dir");

    // The rows: 1M-row chunks over a 30-degree cap, then sorted by _healpix_29.
    let t0 = Instant::now();
    let chunk = 1_000_000;
    let batches: Vec<_> = (0..rows.div_ceil(chunk))
        .map(|i| {
            let n = chunk.min(rows - i * chunk);
            let r = astropipe::synthetic::source_rows(
                n,
                (150.0, 2.2),
                30.0,
                &[i as i64 + 1, i as i64 + 1001],
                i as u64,
            );
            schema::sources_batch(&r).expect("batch")
        })
        .collect();
    let all = arrow::compute::concat_batches(&schema::SOURCES, &batches).expect("concat");
    drop(batches);
    let (sorted, hp_idx) = writer::sort_batch(&all, schema::HEALPIX_29).expect("sort");
    drop(all);
    let ipc = dir.join("rows.arrow");
    {
        let f = std::fs::File::create(&ipc).expect("rows.arrow");
        let mut w = arrow::ipc::writer::FileWriter::try_new(f, &sorted.schema()).expect("ipc");
        let mut off = 0;
        while off < sorted.num_rows() {
            let n = chunk.min(sorted.num_rows() - off);
            w.write(&sorted.slice(off, n)).expect("ipc write");
            off += n;
        }
        w.finish().expect("ipc finish");
    }
    eprintln!("prepared {rows} rows in {:.1}s", t0.elapsed().as_secs_f64());

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
    let path = |name: &str| {
        object_store::path::Path::from_absolute_path(
            std::fs::canonicalize(&dir).unwrap().join(name),
        )
        .unwrap()
    };
    // The input arrives as 64k-row batches, as from a query stream.
    let input: Vec<_> = (0..sorted.num_rows().div_ceil(65_536))
        .map(|i| sorted.slice(i * 65_536, 65_536.min(sorted.num_rows() - i * 65_536)))
        .collect();

    let mut parallel = Vec::new();
    let mut serial = Vec::new();
    let mut bytes = 0u64;
    for _ in 0..reps {
        let t = Instant::now();
        rt.block_on(async {
            let mut up = BufWriter::new(store.clone(), path("astropipe.parquet"));
            let mut w = writer::ParallelWriter::try_new(
                sorted.schema(),
                writer::properties(&sorted.schema(), Some(hp_idx)),
            )
            .unwrap();
            for b in &input {
                w.write(b).unwrap();
                let out = w.take_bytes();
                if !out.is_empty() {
                    up.write_all(&out).await.unwrap();
                }
            }
            let (_, out) = w.close().unwrap();
            up.write_all(&out).await.unwrap();
            up.shutdown().await.unwrap();
        });
        parallel.push(t.elapsed().as_secs_f64());
        bytes = std::fs::metadata(dir.join("astropipe.parquet"))
            .unwrap()
            .len();

        let t = Instant::now();
        rt.block_on(async {
            let up = BufWriter::new(store.clone(), path("astropipe_serial.parquet"));
            let mut w = parquet::arrow::AsyncArrowWriter::try_new(
                up,
                sorted.schema(),
                Some(writer::properties(&sorted.schema(), Some(hp_idx))),
            )
            .unwrap();
            for b in &input {
                w.write(b).await.unwrap();
            }
            w.close().await.unwrap();
        });
        serial.push(t.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "threads": rayon::current_num_threads(),
            "parallel_s": median(parallel.clone()),
            "serial_s": median(serial.clone()),
            "parallel_all": parallel,
            "serial_all": serial,
            "bytes": bytes,
            "ipc": ipc.display().to_string(),
        })
    );
}

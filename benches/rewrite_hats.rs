//! Rewrites a HATS collection's partition files the way our compaction writes partitions,
//! so `benches/cone_vs_q3c.sh` can serve the same rows in both layouts:
//!
//! `cargo bench --bench rewrite_hats -- --bench IN OUT`
//!
//! Copies the collection at `IN` to `OUT`, then replaces every partition and margin file under
//! `*/dataset/Norder=*` by its rows sorted by `_healpix_29` and encoded with
//! [`astropipe::catalog::writer::encode_sorted`] — compaction's writer settings (row groups,
//! pages, page statistics, compression). hats-import writes each partition as one row group
//! in no HEALPix order; ours are sorted, so a cone's index ranges select a few pages.
//! `dataset/_metadata` (row-group offsets of the old files) is removed; the server lists
//! partitions and does not read it. Prints JSON: files, rows, bytes before and after.

use arrow::compute::concat_batches;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

/// Every file under `dir`, depth first.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let [input, output] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench rewrite_hats -- IN OUT");
        std::process::exit(2);
    };
    let status = std::process::Command::new("cp")
        .args(["-r", input, output])
        .status()
        .expect("cp");
    assert!(status.success(), "copying {input} to {output}");
    let mut all = Vec::new();
    files(Path::new(output), &mut all);
    let parts: Vec<&PathBuf> = all
        .iter()
        .filter(|p| {
            p.extension().is_some_and(|x| x == "parquet")
                && p.to_string_lossy().contains("/Norder=")
        })
        .collect();
    let (mut rows, mut before, mut after) = (0usize, 0u64, 0u64);
    for f in &parts {
        let file = std::fs::File::open(f).expect("open partition");
        before += file.metadata().expect("size").len();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("a Parquet file")
            .build()
            .expect("reader");
        let batches: Vec<_> = reader.map(|b| b.expect("decode")).collect();
        let Some(first) = batches.first() else {
            continue;
        };
        let all = concat_batches(&first.schema(), &batches).expect("concat");
        rows += all.num_rows();
        let bytes = astropipe::catalog::writer::encode_sorted(&all, "_healpix_29")
            .expect("encode sorted by _healpix_29");
        after += bytes.len() as u64;
        std::fs::write(f, &bytes).expect("write partition");
    }
    for p in all
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "_metadata"))
    {
        std::fs::remove_file(p).expect("remove _metadata");
    }
    println!(
        "{{\"files\": {}, \"rows\": {rows}, \"bytes_before\": {before}, \"bytes_after\": {after}}}",
        parts.len()
    );
}

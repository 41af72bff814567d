//! The documented example queries of `sql/examples/` (compiled in through
//! `astropipe::examples`, verbatim), timed on the demo catalog: the demo's inputs are written
//! and ingested into a temporary directory (untimed), then each example is planned and run to
//! the last batch `--reps` times (ADQL ones translated first, inside the timing).
//!
//! `cargo bench --bench examples [-- --reps 20]` prints JSON: per example, the median seconds
//! and the rows returned.

mod common;

use astropipe::examples::{EXAMPLES, Lang};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // `cargo test --all-targets`: nothing to time
    }
    let reps: usize = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (inputs, _) = astropipe::demo::write_inputs(dir.path()).expect("demo inputs");
    let catalog = dir.path().join("catalog");
    let opts = astropipe::ingest::IngestOptions::new(
        vec![inputs.display().to_string()],
        catalog.display().to_string(),
    );
    rt.block_on(astropipe::ingest::run(&opts))
        .expect("the demo ingests");
    let loc = astropipe::storage::Location::open(&catalog.display().to_string()).unwrap();
    let (ctx, _) = rt
        .block_on(astropipe::query::session::open(&loc))
        .expect("the catalog opens");
    let mut out = serde_json::Map::new();
    for e in EXAMPLES {
        let (seconds, rows) = common::time(reps, || {
            rt.block_on(async {
                let sql = match e.lang {
                    Lang::Sql => e.text.to_string(),
                    Lang::Adql => astropipe::ivoa::adql::to_sql(e.text).expect("ADQL translates"),
                };
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                batches.iter().map(|b| b.num_rows()).sum::<usize>()
            })
        });
        out.insert(
            e.file.to_string(),
            serde_json::json!({ "median_s": seconds, "rows": rows }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
}

//! astropipe: FITS images in, a sky catalog out, served with SQL.
//!
//! # Layout
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | the command line (clap), every flag also from `ASTROPIPE_*` |
//! | [`config`] | one validated configuration: TOML file < environment < flags → typed options per command |
//! | [`cmd`] | each command's glue: validated options → the library → what it prints; errors → exit codes |
//! | [`fits`] | FITS reading (fitsrs for headers and HDUs; ours for pixels, scaling, tile codecs, gzip), a writer, bounds on what a file may claim |
//! | [`wcs`] | pixel ↔ sky: every Calabretta & Greisen projection (one file per family), SIP, TPV, frames → ICRS |
//! | [`image`] | image science: cosmic rays, background, detection, deblending, measurement, quality, the preview picture |
//! | [`calib`] | calibration: master bias/dark/flat (`calib build`), overscan/trim, applying masters |
//! | [`synthetic`] | synthetic star fields with a known WCS (demo, tests, benches) |
//! | [`storage`] | object stores from catalog URIs (local, s3://, memory://) |
//! | [`catalog`] | the tables' columns (one list → schemas and builders), Parquet encoding, the commit log, the HATS layout, margins |
//! | [`ingest`] | the batch: inputs → per-HDU pipeline in stages (rayon) → catalog increments, report |
//! | [`query`] | the engine: DataFusion session with the UDFs, HEALPix-pruning table provider, `--table` discovery, `cone_search`/`xmatch`, limits, read-only guard |
//! | [`compact`] | `compact`: plan → partition → HATS metadata → commit → gc |
//! | [`format`] | result encoders, batch by batch (JSON, NDJSON, CSV, Arrow IPC, Parquet, VOTable, text) |
//! | [`http`] | HTTP plumbing `serve` and `worker` share: connections with deadlines and a cap, client identity, slots and rates, auth, errors, probes, metrics, shutdown |
//! | [`service`] | what the catalog service's protocols share: its state, query slots, results streamed as HTTP, query errors → statuses |
//! | [`ivoa`] | IVOA: ADQL, TAP (sync, UWS async jobs in the store, uploads, VOSI, examples), Cone Search, ObsCore and SIA, TAP_SCHEMA, VOTable (write and read), MOC (FITS through `fits`' writer) |
//! | [`server`] | `serve`: the router (SQL, tables, IVOA), Arrow Flight SQL, listeners |
//! | [`worker`] | `worker`: the image-processor service — jobs API, durable queue in the object store, leases |
//! | [`telemetry`] | logging setup and every Prometheus metric |
//! | [`examples`] | the example queries of `sql/examples/`, compiled in |
//! | [`demo`] | the embedded default: bundled samples → `./astro-data` → served |
//!
//! The astronomy SQL functions live in the `astropipe-udfs` crate (`udfs/`).
//!
//! ## Direction of use
//!
//! Each module uses only the ones listed for it (the `layering` test below reads every
//! source file and fails on any other `crate::` path), so the arrows point one way:
//!
//! ```text
//! cmd, config ─────────────────────────────► everything below (the only modules that may)
//! server ──► ivoa endpoints (tap, scs) ──► service ──► query ──► catalog ──► storage
//!   │              │                          │         ▲
//!   └──────────────┴──► format, http ◄────────┘         │
//! worker ──► ingest ──► image, calib, wcs, fits; catalog │
//! compact ──► query, catalog, storage ───────────────────┘
//! ```
//!
//! - Pure science (`fits`, `wcs`, `image`, `calib`) knows no storage, query or protocol:
//!   `wcs` reads `fits` headers, `calib` uses `image`'s statistics, nothing else.
//! - The catalog knows no query engine; compaction, which sorts with it, sits above both.
//! - The query engine knows no protocol: `format` encodes results (VOTable through
//!   `ivoa::votable`, a leaf like `ivoa::tap_schema` and `ivoa::xml`), and the endpoints
//!   that call the engine live in `service`, `ivoa` and `server`.
//! - `http` is the plumbing both services use; `worker` and `server` never use each other.

pub mod calib;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod compact;
pub mod config;
pub mod demo;
pub mod examples;
pub mod fits;
pub mod format;
pub mod http;
pub mod image;
pub mod ingest;
pub mod ivoa;
pub mod query;
pub mod server;
pub mod service;
pub mod storage;
pub mod synthetic;
pub mod telemetry;
pub mod wcs;
pub mod worker;

#[cfg(test)]
mod layering {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// What each top-level module may use (`crate::<name>`), besides itself.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("cli", &[]),
        ("storage", &[]),
        ("telemetry", &[]),
        ("examples", &[]),
        ("fits", &[]),
        ("wcs", &["fits"]),
        ("image", &["fits", "wcs"]),
        ("calib", &["fits", "image"]),
        ("synthetic", &["fits", "wcs", "catalog"]),
        ("catalog", &["storage"]),
        ("query", &["catalog", "storage"]),
        (
            "ingest",
            &[
                "fits",
                "wcs",
                "image",
                "calib",
                "catalog",
                "storage",
                "telemetry",
            ],
        ),
        ("compact", &["catalog", "query", "storage"]),
        ("format", &["catalog", "ivoa::votable"]),
        ("http", &["telemetry"]),
        (
            "service",
            &["query", "catalog", "storage", "http", "format", "telemetry"],
        ),
        (
            "ivoa",
            &[
                "fits",
                "query",
                "catalog",
                "service",
                "http",
                "format",
                "telemetry",
                "examples",
                "storage",
            ],
        ),
        (
            "server",
            &[
                "ivoa",
                "service",
                "query",
                "storage",
                "http",
                "format",
                "telemetry",
            ],
        ),
        (
            "worker",
            &["ingest", "fits", "catalog", "storage", "http", "telemetry"],
        ),
        ("demo", &["examples", "synthetic"]),
    ];

    /// The `crate::a[::b]` paths in the code of `path` (comments left out).
    fn uses(path: &Path, out: &mut BTreeSet<String>) {
        if path.is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                uses(&e.unwrap().path(), out);
            }
            return;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let word = |s: &str| {
                    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")
                        .to_string()
                };
                let first = word(rest);
                let second = rest
                    .strip_prefix(&first)
                    .and_then(|r| r.strip_prefix("::"))
                    .map(word)
                    .unwrap_or_default();
                out.insert(format!("{first}::{second}"));
            }
        }
    }

    #[test]
    fn modules_use_only_the_layers_below_them() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut broken = Vec::new();
        for (module, allowed) in ALLOWED {
            let dir = src.join(module);
            let path = if dir.is_dir() {
                dir
            } else {
                src.join(format!("{module}.rs"))
            };
            let mut found = BTreeSet::new();
            uses(&path, &mut found);
            for u in found {
                let top = u.split("::").next().unwrap();
                let ok = top == *module
                    || allowed
                        .iter()
                        .any(|a| *a == top || (a.contains("::") && u.starts_with(*a)));
                if !ok {
                    broken.push(format!("{module} uses crate::{u}"));
                }
            }
        }
        assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
    }

    #[test]
    fn every_module_has_its_rule() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for e in std::fs::read_dir(src).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let module = name.trim_end_matches(".rs");
            if ["lib", "main", "cmd", "config"].contains(&module) {
                continue;
            }
            assert!(
                ALLOWED.iter().any(|(m, _)| *m == module),
                "src/{name} has no layering rule"
            );
        }
    }
}

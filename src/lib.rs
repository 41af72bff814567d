//! astropipe: FITS images in, a sky catalog out, served with SQL.
//!
//! # Layout
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | the command line (clap), every flag also from `ASTROPIPE_*` |
//! | [`config`] | one validated configuration: TOML file < environment < flags |
//! | [`cmd`] | each command's glue: validated options → the library → what it prints; errors → exit codes |
//! | [`fits`] | FITS reading (fitsrs for headers and HDUs; ours for pixels, scaling, gzip) and a writer |
//! | [`wcs`] | pixel ↔ sky: every Calabretta & Greisen projection, SIP, TPV, frames → ICRS |
//! | [`calib`] | calibration: master bias/dark/flat (`calib build`), overscan/trim, applying masters |
//! | [`image`] | image science: cosmic rays, background, detection, deblending, measurement, quality |
//! | [`ingest`] | the batch: inputs → per-HDU pipeline (rayon) → catalog increments, report |
//! | [`catalog`] | Arrow schemas, Parquet encoding, the commit log, the HATS layout, margins |
//! | [`compact`] | `compact`: increments → a new HATS generation with its margin cache; garbage collection |
//! | [`storage`] | object stores from catalog URIs (local, s3://, memory://) |
//! | [`query`] | DataFusion session with the UDFs, HEALPix-pruning table provider, `--table` discovery, `cone_search`/`xmatch`, limits, read-only guard, ADQL translation, TAP_SCHEMA, result encoders (JSON, CSV, Arrow, Parquet, VOTable) |
//! | [`server`] | `serve`: HTTP API (SQL, TAP, Cone Search), Arrow Flight SQL, auth, probes, metrics, graceful shutdown |
//! | [`http`] | HTTP plumbing `serve` and `worker` share: connections with deadlines and a cap, client identity behind trusted proxies, per-client slots and rates |
//! | [`worker`] | `worker`: the image-processor service — jobs API, durable queue in the object store, leases |
//! | [`telemetry`] | logging setup and every Prometheus metric |
//! | [`synthetic`] | synthetic star fields with a known WCS (demo, tests, benches) |
//! | [`demo`] | the embedded default: bundled samples → `./astro-data` → served |
//!
//! The astronomy SQL functions live in the `astropipe-udfs` crate (`udfs/`).

pub mod calib;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod compact;
pub mod config;
pub mod demo;
pub mod examples;
pub mod fits;
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

//! Integration tests: one binary, one module per area, helpers in `helpers`.

mod calib;
mod catalog;
mod cosmic_rays;
mod crash;
mod fits_cli;
mod fits_hostile;
mod fits_reference;
mod flight;
mod hardening;
mod hats_interop;
mod helpers;
mod hot_cache;
mod image_science;
mod ingest;
mod ivoa;
mod k8s;
mod preview;
mod query;
mod s3;
mod server;
mod service;
mod tap;
mod worker;

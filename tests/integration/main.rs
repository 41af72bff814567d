//! Integration tests: one binary, one module per area, helpers in `helpers`.

mod catalog;
mod fits_cli;
mod fits_hostile;
mod fits_reference;
mod helpers;
mod ingest;
mod server;

//! `astropipe sql`: one query from the operator's own shell (the structural limits only),
//! printed as a table, CSV, JSON or NDJSON.

use super::CmdError;
use crate::cli::{OutputFormat, SqlArgs};
use crate::config::FileConfig;
use crate::format::{BatchEncoder, Format};
use crate::query::{self, session};
use crate::storage::Location;
use futures::StreamExt;
use std::io::Write;

pub async fn run(file: &FileConfig, a: SqlArgs) -> Result<(), CmdError> {
    let loc = Location::open(&file.catalog(&a.catalog))?;
    let (ctx, _) = session::open(&loc).await?;
    session::register_extra_tables(&ctx, &file.tables(&a.tables)).await?;
    let format = match a.format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
        OutputFormat::Ndjson => Format::Ndjson,
    };
    let limited = query::execute(
        &ctx,
        &a.query,
        None,
        &query::Limits::default(),
        &query::Budget::unlimited(),
    )
    .await?;
    let mut stream = limited.stream;
    let (mut enc, head) = BatchEncoder::new(format, &stream.schema())?;
    let mut out = std::io::stdout().lock();
    out.write_all(&head)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| query::QueryError::from_execution(&e))?;
        out.write_all(&enc.encode(&batch)?)?;
    }
    out.write_all(&enc.finish()?)?;
    if format == Format::Json {
        out.write_all(b"\n")?;
    }
    Ok(())
}

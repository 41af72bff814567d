//! `astropipe ingest`.

use super::CmdError;
use crate::cli::IngestArgs;
use crate::config::FileConfig;
use std::io::IsTerminal;

pub async fn run(file: &FileConfig, a: IngestArgs) -> Result<(), CmdError> {
    let mut opts = file.ingest_options(&a)?;
    opts.progress = std::io::stderr().is_terminal();
    let report = crate::ingest::run(&opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    if report.success(a.strict) {
        Ok(())
    } else if a.strict && !report.failures.is_empty() {
        Err(CmdError::Failed(format!(
            "{} failure(s) with --strict",
            report.failures.len()
        )))
    } else {
        Err(CmdError::Failed("nothing could be ingested".into()))
    }
}

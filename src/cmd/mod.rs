//! The command line's glue: [`run`] loads the configuration, turns the parsed arguments into
//! the validated options of one command ([`crate::config`]), runs it through the library and
//! prints what it reports. One small module per command; every error is a [`CmdError`] with
//! the exit code it maps to (0 success, 1 the work failed, 2 bad usage or configuration).

mod calib;
mod compact;
mod demo;
mod fits;
mod ingest;
mod preview;
mod serve;
mod sql;
mod worker;

use crate::cli::{Cli, Command};
use crate::config::{ConfigError, FileConfig};

/// Exit codes.
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The command line or the configuration is wrong (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Fits(#[from] crate::fits::FitsError),
    #[error(transparent)]
    Wcs(#[from] crate::wcs::WcsError),
    #[error(transparent)]
    Calib(#[from] crate::calib::CalibError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Compact(#[from] crate::compact::CompactError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Session(#[from] crate::query::session::SessionError),
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The work ran but failed as a whole (e.g. nothing could be ingested).
    #[error("{0}")]
    Failed(String),
}

impl CmdError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CmdError::Config(_) | CmdError::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

/// Do the logs go to stdout (services) or stderr (commands that print results)?
pub fn stdout_is_output(cli: &Cli) -> bool {
    !matches!(cli.command, Command::Serve(_) | Command::Worker(_))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CmdError> {
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Ingest(a) => ingest::run(&file, a).await,
        Command::Serve(a) => serve::run(&file, *a).await,
        Command::Worker(a) => worker::run(&file, a).await,
        Command::Sql(a) => sql::run(&file, a).await,
        Command::Compact(a) => compact::run(&file, a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Fits { command } => fits::run(command),
        Command::Calib { command } => calib::run(&file, command),
        Command::Preview(a) => preview::run(&file, a),
    }
}

/// Prints `v` as pretty JSON, or as the text `text` renders.
fn print_json_or(
    v: &serde_json::Value,
    json: bool,
    text: impl FnOnce(&serde_json::Value) -> String,
) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        print!("{}", text(v));
    }
}

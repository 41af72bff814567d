//! `astropipe worker`.

use super::CmdError;
use crate::cli::WorkerArgs;
use crate::config::FileConfig;
use crate::worker::Worker;

pub async fn run(file: &FileConfig, a: WorkerArgs) -> Result<(), CmdError> {
    let opts = file.worker_options(&a)?;
    let worker = Worker::build(opts).await?;
    worker
        .run_until_stopped(crate::http::shutdown::signal())
        .await?;
    Ok(())
}

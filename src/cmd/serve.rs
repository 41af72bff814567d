//! `astropipe serve`.

use super::CmdError;
use crate::cli::ServeArgs;
use crate::config::FileConfig;
use crate::server::Server;

pub async fn run(file: &FileConfig, a: ServeArgs) -> Result<(), CmdError> {
    let opts = file.serve_options(&a)?;
    let server = Server::build(&opts).await?;
    server
        .run_until_stopped(crate::http::shutdown::signal())
        .await?;
    Ok(())
}

//! `astropipe demo`: the bundled samples (see [`crate::demo`]) ingested into `DIR`, the
//! example queries printed, and the catalog served.

use super::CmdError;
use crate::cli::DemoArgs;
use crate::ingest::IngestOptions;
use crate::server::{ServeOptions, Server};
use std::io::IsTerminal;

pub async fn run(a: DemoArgs) -> Result<(), CmdError> {
    let addr: std::net::SocketAddr = a
        .addr
        .parse()
        .map_err(|e| CmdError::Usage(format!("--addr {}: {e}", a.addr)))?;
    let dir = std::path::PathBuf::from(&a.dir);
    let (inputs, _frame) = crate::demo::write_inputs(&dir)?;
    let mut opts = IngestOptions::new(vec![inputs.display().to_string()], a.dir.clone());
    opts.progress = std::io::stderr().is_terminal();
    let report = crate::ingest::run(&opts).await?;
    println!("{report}\n");
    println!("Example queries (the catalog is at {}):\n", report.catalog);
    for e in crate::examples::EXAMPLES {
        println!(
            "# {} (sql/examples/{})\n{}\n",
            e.title(),
            e.file,
            crate::demo::example_curl(&a.addr, e)
        );
    }
    println!(
        "# or from the command line\nastropipe sql --catalog {} \"SELECT count(*) FROM sources\"\n",
        a.dir
    );
    if a.no_serve {
        return Ok(());
    }
    let server = Server::build(&ServeOptions::new(a.dir.clone(), addr)).await?;
    println!(
        "Serving on http://{} (Ctrl-C to stop)",
        server.local_addr()?
    );
    server
        .run_until_stopped(crate::http::shutdown::signal())
        .await?;
    Ok(())
}

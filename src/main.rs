use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = astropipe::cli::Cli::parse();
    astropipe::telemetry::init_logging(astropipe::cmd::stdout_is_output(&cli));
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(astropipe::cmd::EXIT_FAILURE);
        }
    };
    match rt.block_on(astropipe::cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

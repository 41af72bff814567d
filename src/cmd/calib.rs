//! `astropipe calib build`.

use super::CmdError;
use crate::cli::CalibCommand;
use crate::config::FileConfig;

pub fn run(file: &FileConfig, cmd: CalibCommand) -> Result<(), CmdError> {
    let CalibCommand::Build(a) = cmd;
    let opts = file.calib_options(&a)?;
    let report = crate::calib::masters::build(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for m in &report.masters {
            println!(
                "{} {} ({} inputs, {}x{}, median {:.4}{})",
                m.kind,
                m.path,
                m.n_inputs,
                m.width,
                m.height,
                m.median,
                m.bad_pixels
                    .map(|b| format!(", {b} bad pixels"))
                    .unwrap_or_default()
            );
        }
        for (f, why) in &report.rejected {
            println!("rejected {f}: {why}");
        }
    }
    if report.masters.is_empty() {
        return Err(CmdError::Failed("no master could be built".into()));
    }
    Ok(())
}

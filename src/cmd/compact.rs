//! `astropipe compact`.

use super::CmdError;
use crate::cli::CompactArgs;
use crate::config::FileConfig;

pub async fn run(file: &FileConfig, a: CompactArgs) -> Result<(), CmdError> {
    let opts = file.compact_options(&a)?;
    let report = crate::compact::run(&opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

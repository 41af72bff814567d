//! The ingest report: what was processed, skipped and failed, and why.

use serde::Serialize;
use std::fmt;

/// One problem with an input, for the report and the exit code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub input: String,
    /// The HDU concerned, when the problem is one HDU's.
    pub hdu: Option<usize>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub catalog: String,
    /// Input files found.
    pub files: usize,
    /// Files that contributed at least one exposure.
    pub files_ingested: usize,
    /// Files already in the catalog (same content hash): nothing to do.
    pub files_already_ingested: usize,
    /// Files that could not be read at all, or had no processable image.
    pub files_failed: usize,
    pub hdus: usize,
    pub sources: usize,
    pub failures: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Catalog versions committed by this run.
    pub versions: Vec<u64>,
    pub seconds: f64,
}

impl IngestReport {
    /// Exit status: failure when nothing at all could be ingested (and something was asked),
    /// or, with `strict`, when anything failed.
    pub fn success(&self, strict: bool) -> bool {
        let nothing = self.files_ingested == 0 && self.files_already_ingested == 0;
        if strict {
            self.failures.is_empty() && !nothing
        } else {
            !nothing
        }
    }
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ingest into {}", self.catalog)?;
        writeln!(
            f,
            "  files: {} found, {} ingested, {} already in the catalog, {} failed",
            self.files, self.files_ingested, self.files_already_ingested, self.files_failed
        )?;
        writeln!(f, "  image HDUs processed: {}", self.hdus)?;
        writeln!(f, "  sources: {}", self.sources)?;
        if !self.versions.is_empty() {
            let v: Vec<String> = self.versions.iter().map(|v| v.to_string()).collect();
            writeln!(f, "  committed catalog version(s): {}", v.join(", "))?;
        }
        for (title, list) in [("failures", &self.failures), ("warnings", &self.warnings)] {
            if list.is_empty() {
                continue;
            }
            writeln!(f, "  {title}: {}", list.len())?;
            for p in list {
                match p.hdu {
                    Some(h) => writeln!(f, "    - {} [HDU {h}]: {}", p.input, p.reason)?,
                    None => writeln!(f, "    - {}: {}", p.input, p.reason)?,
                }
            }
        }
        write!(f, "  seconds: {:.2}", self.seconds)
    }
}

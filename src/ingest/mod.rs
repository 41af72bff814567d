//! `astropipe ingest`: FITS files in, a committed catalog increment out.
//!
//! - [`inputs`]: expand files, directories and globs;
//! - [`pipeline`]: one image HDU → exposure and source rows (rayon, one task per HDU);
//! - [`report`]: the summary and the exit status.
//!
//! Inputs are processed in chunks; each chunk becomes one increment: its Parquet files are
//! written first, then its commit record. An input whose content hash is already committed is
//! skipped, so re-running an ingest is a no-op for what it already did.

pub mod inputs;
pub mod pipeline;
pub mod report;

use crate::catalog::{
    self, CatalogError, CommitRecord, EXPOSURES, FileEntry, InputEntry, SOURCES, commit, schema,
};
use crate::image::ExtractOptions;
use crate::storage::{Location, StorageError};
use crate::telemetry::metrics;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline::{Failure, FailureKind, FileOutcome};
use rayon::prelude::*;
pub use report::{IngestReport, Problem};
use std::collections::HashSet;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Commit(#[from] catalog::CommitError),
    #[error("processing was interrupted: {0}")]
    Join(String),
}

/// Settings of one ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub inputs: Vec<String>,
    pub catalog: String,
    pub extract: ExtractOptions,
    /// Files per increment (and per commit).
    pub chunk_files: usize,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// Treat checksum mismatches as failures rather than warnings.
    pub strict: bool,
    /// Process inputs already in the catalog again and replace their rows.
    pub reprocess: bool,
    /// Only this share of the (sorted) inputs: (index, count).
    pub shard: Option<(usize, usize)>,
    /// What an input file may claim (pixels, header cards, decompressed bytes).
    pub fits: crate::fits::FitsLimits,
    /// When set, local files must lie under these roots once expanded and links resolved
    /// (inputs named by a network client).
    pub allowed: Option<std::sync::Arc<inputs::InputRoots>>,
    /// When set and raised, the run stops before the next file (a job timed out).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Calibration masters (`--calib`), shared by the workers.
    pub calib: Option<std::sync::Arc<crate::calib::Library>>,
}

impl IngestOptions {
    pub fn new(inputs: Vec<String>, catalog: impl Into<String>) -> Self {
        IngestOptions {
            inputs,
            catalog: catalog.into(),
            extract: ExtractOptions::default(),
            chunk_files: 64,
            progress: false,
            strict: false,
            reprocess: false,
            shard: None,
            fits: crate::fits::FitsLimits::default(),
            allowed: None,
            cancel: None,
            calib: None,
        }
    }
}

/// An input and, for an object-store input, its bytes (or why they could not be read).
type Fetched = (inputs::Input, Option<Result<Vec<u8>, Failure>>);

/// One processed input file.
struct Processed {
    uri: String,
    sha256: String,
    outcome: Result<FileOutcome, Failure>,
}

/// Runs an ingest: expands the inputs, processes new files in parallel and commits them.
pub async fn run(opts: &IngestOptions) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let loc = Location::open(&opts.catalog)?;
    let (files, mut unmatched) = inputs::expand_all(&opts.inputs).await;
    let files: Vec<inputs::Input> = match &opts.allowed {
        None => files,
        Some(roots) => files
            .into_iter()
            .filter(|f| match f {
                inputs::Input::Local(p) if !roots.contains_file(p) => {
                    unmatched.push(inputs::Unmatched {
                        input: p.display().to_string(),
                        reason: "not under an allowed root once links are resolved".into(),
                    });
                    false
                }
                _ => true,
            })
            .collect(),
    };
    let files = match opts.shard {
        Some((index, count)) => inputs::shard(files, index, count),
        None => files,
    };
    let mut report = IngestReport {
        catalog: loc.uri.clone(),
        files: files.len(),
        ..Default::default()
    };
    for u in unmatched {
        report.failures.push(Problem {
            input: u.input,
            hdu: None,
            reason: u.reason,
        });
    }
    let bar = if opts.progress {
        ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Object-store inputs are held in memory while their chunk is processed: smaller chunks.
    let chunk = if files.iter().any(|f| matches!(f, inputs::Input::Remote(_))) {
        opts.chunk_files.clamp(1, 16)
    } else {
        opts.chunk_files.max(1)
    };
    let cancelled = || {
        opts.cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Acquire))
    };
    for paths in files.chunks(chunk) {
        if cancelled() {
            report.failures.push(Problem {
                input: format!("{} input(s)", paths.len()),
                hdu: None,
                reason: "not processed: the run was stopped".into(),
            });
            continue;
        }
        let snap = commit::snapshot(&loc).await?;
        let known: HashSet<String> = if opts.reprocess {
            HashSet::new()
        } else {
            snap.inputs.keys().cloned().collect()
        };
        // Remote inputs are fetched first (concurrently), then everything is processed on
        // the rayon pool.
        let fetched: Vec<Fetched> = futures::future::join_all(paths.iter().map(|p| async move {
            match p {
                inputs::Input::Remote(uri) => (
                    p.clone(),
                    Some(inputs::read_remote(uri, opts.fits.max_bytes).await),
                ),
                inputs::Input::Local(_) => (p.clone(), None),
            }
        }))
        .await;
        let extract = opts.extract.clone();
        let limits = opts.fits;
        let cancel = opts.cancel.clone();
        let calib = opts.calib.clone();
        let bar2 = bar.clone();
        let processed = tokio::task::spawn_blocking(move || {
            fetched
                .into_par_iter()
                .map(|(input, bytes)| {
                    let stop = cancel
                        .as_ref()
                        .is_some_and(|c| c.load(std::sync::atomic::Ordering::Acquire));
                    let r = match (input, bytes) {
                        (i, _) if stop => Some(Processed {
                            uri: i.uri(),
                            sha256: String::new(),
                            outcome: Err(Failure::new(
                                FailureKind::Stopped,
                                "not processed: the run was stopped",
                            )),
                        }),
                        (inputs::Input::Local(p), _) => {
                            process_path(&p, &known, &extract, &limits, calib.as_deref())
                        }
                        (inputs::Input::Remote(uri), Some(read)) => {
                            process_bytes(uri, read, &known, &extract, &limits, calib.as_deref())
                        }
                        (inputs::Input::Remote(uri), None) => process_bytes(
                            uri,
                            Err(Failure::new(FailureKind::Io, "not fetched")),
                            &known,
                            &extract,
                            &limits,
                            calib.as_deref(),
                        ),
                    };
                    bar2.inc(1);
                    r
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| IngestError::Join(e.to_string()))?;
        let mut fresh: Vec<Processed> = Vec::new();
        for p in processed {
            match p {
                None => report.files_already_ingested += 1,
                Some(p) => {
                    // The same content under two names is one input.
                    let twin = fresh
                        .iter()
                        .find(|q| !p.sha256.is_empty() && q.sha256 == p.sha256);
                    if let Some(q) = twin {
                        report.files_already_ingested += 1;
                        report.warnings.push(Problem {
                            input: p.uri.clone(),
                            hdu: None,
                            reason: format!("same content as {}: ingested once", q.uri),
                        });
                    } else {
                        fresh.push(p);
                    }
                }
            }
        }
        account(&mut report, &fresh, opts.strict);
        if let Some(v) = commit_chunk(&loc, fresh, opts.reprocess).await? {
            report.versions.push(v);
        }
        bar.set_message(format!("{} sources", report.sources));
    }
    bar.finish_and_clear();
    report.seconds = started.elapsed().as_secs_f64();
    let m = metrics();
    m.ingest_files
        .with_label_values(&["ingested"])
        .inc_by(report.files_ingested as u64);
    m.ingest_files
        .with_label_values(&["already_ingested"])
        .inc_by(report.files_already_ingested as u64);
    m.ingest_files
        .with_label_values(&["failed"])
        .inc_by(report.files_failed as u64);
    m.ingest_sources.inc_by(report.sources as u64);
    Ok(report)
}

/// Reads, hashes and processes one file. `None` when its content is already committed.
fn process_path(
    path: &std::path::Path,
    known: &HashSet<String>,
    opts: &ExtractOptions,
    limits: &crate::fits::FitsLimits,
    calib: Option<&crate::calib::Library>,
) -> Option<Processed> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let read = if size > limits.max_bytes {
        Err(Failure::new(
            FailureKind::Refused,
            format!(
                "refused: the file is {size} bytes; at most {} are accepted (--max-decompressed-mb)",
                limits.max_bytes
            ),
        ))
    } else {
        crate::fits::image::read_file(path)
            .map_err(|e| Failure::new(FailureKind::Io, format!("cannot read: {e}")))
    };
    process_bytes(path.display().to_string(), read, known, opts, limits, calib)
}

/// Processes one input's bytes (None: already in the catalog).
fn process_bytes(
    uri: String,
    read: Result<Vec<u8>, Failure>,
    known: &HashSet<String>,
    opts: &ExtractOptions,
    limits: &crate::fits::FitsLimits,
    calib: Option<&crate::calib::Library>,
) -> Option<Processed> {
    let t0 = Instant::now();
    let bytes = match read {
        Ok(b) => b,
        Err(failure) => {
            return Some(Processed {
                uri,
                sha256: String::new(),
                outcome: Err(failure),
            });
        }
    };
    let sha256 = pipeline::content_hash(&bytes);
    if known.contains(&sha256) {
        return None;
    }
    metrics().ingest_bytes.inc_by(bytes.len() as u64);
    let outcome = crate::fits::FitsFile::from_bytes_with(uri.clone(), bytes, *limits)
        .map(|f| pipeline::process_file(&f, &uri, &sha256, opts, calib))
        .map_err(Failure::from);
    metrics()
        .ingest_stage_seconds
        .with_label_values(&["file"])
        .observe(t0.elapsed().as_secs_f64());
    Some(Processed {
        uri,
        sha256,
        outcome,
    })
}

fn account(report: &mut IngestReport, fresh: &[Processed], strict: bool) {
    for p in fresh {
        match &p.outcome {
            Err(failure) => {
                report.files_failed += 1;
                metrics()
                    .ingest_failures
                    .with_label_values(&[failure.kind.label()])
                    .inc();
                report.failures.push(Problem {
                    input: p.uri.clone(),
                    hdu: None,
                    reason: failure.message.clone(),
                });
            }
            Ok(o) => {
                if o.exposures.is_empty() {
                    report.files_failed += 1;
                    let reason = if o.failed.is_empty() {
                        "no image data in the file".to_string()
                    } else {
                        "no image HDU could be processed".to_string()
                    };
                    metrics()
                        .ingest_failures
                        .with_label_values(&[FailureKind::NoImage.label()])
                        .inc();
                    report.failures.push(Problem {
                        input: p.uri.clone(),
                        hdu: None,
                        reason,
                    });
                } else {
                    report.files_ingested += 1;
                    report.hdus += o.exposures.len();
                    report.sources += o.sources.len();
                }
                for f in &o.failed {
                    metrics()
                        .ingest_failures
                        .with_label_values(&[f.kind.label()])
                        .inc();
                    report.failures.push(Problem {
                        input: p.uri.clone(),
                        hdu: Some(f.hdu),
                        reason: f.reason.clone(),
                    });
                }
                for c in &o.checksum_mismatches {
                    let p = Problem {
                        input: p.uri.clone(),
                        hdu: Some(c.hdu),
                        reason: c.reason.clone(),
                    };
                    if strict {
                        metrics()
                            .ingest_failures
                            .with_label_values(&["checksum"])
                            .inc();
                        report.failures.push(p);
                    } else {
                        report.warnings.push(p);
                    }
                }
                for w in &o.warnings {
                    report.warnings.push(Problem {
                        input: p.uri.clone(),
                        hdu: None,
                        reason: w.clone(),
                    });
                }
            }
        }
    }
}

/// Commits between checkpoints of the snapshot.
const CHECKPOINT_EVERY: u64 = 32;

/// Writes the increment of the good files of a chunk and commits it.
///
/// The files are written once. When another writer commits first, the fresh snapshot decides:
/// inputs it committed meanwhile are dropped (and only then are the files rewritten without
/// them), so a content hash is never committed twice; otherwise the same files are committed
/// at the next version. With `reprocess`, inputs already in the catalog replace their old
/// rows: the live files holding them are rewritten without those exposures, and the removal
/// and the new rows become visible in the same commit.
async fn commit_chunk(
    loc: &Location,
    fresh: Vec<Processed>,
    reprocess: bool,
) -> Result<Option<u64>, IngestError> {
    let mut good: Vec<(String, String, FileOutcome)> = fresh
        .into_iter()
        .filter_map(|p| match p.outcome {
            Ok(o) if !o.exposures.is_empty() => Some((p.uri, p.sha256, o)),
            _ => None,
        })
        .collect();
    let mut written: Option<(usize, Vec<FileEntry>)> = None;
    const MAX_ATTEMPTS: usize = 64;
    for _ in 0..MAX_ATTEMPTS {
        let snap = commit::snapshot(loc).await?;
        let before = good.len();
        // Without --reprocess, an input someone else committed meanwhile is theirs; with it,
        // this run replaces whatever is committed for the input (the last writer wins, and
        // the rewrite below removes the earlier rows, so nothing is duplicated).
        good.retain(|(_, sha, _)| reprocess || !snap.inputs.contains_key(sha));
        if good.is_empty() {
            return Ok(None);
        }
        if good.len() != before {
            written = None;
        }
        let run_id = commit::new_run_id();
        let add = match &written {
            Some((n, files)) if *n == good.len() => files.clone(),
            _ => {
                let files = write_increment(loc, &good, &run_id).await?;
                written = Some((good.len(), files.clone()));
                files
            }
        };
        // Reprocessing: rewrite the live files that hold the exposures being replaced.
        let replaced: std::collections::HashSet<i64> = if reprocess {
            good.iter()
                .filter_map(|(_, sha, _)| snap.inputs.get(sha))
                .flat_map(|i| i.exposure_ids.iter().copied())
                .collect()
        } else {
            Default::default()
        };
        let (remove, rewritten) = if replaced.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            catalog::rewrite_without(loc, &snap, &replaced, &run_id).await?
        };
        let record = CommitRecord {
            version: snap.version + 1,
            run_id,
            created_at: commit::now_rfc3339(),
            pipeline_version: env!("CARGO_PKG_VERSION").to_string(),
            operation: if replaced.is_empty() {
                "ingest".into()
            } else {
                "reprocess".into()
            },
            add: add.into_iter().chain(rewritten).collect(),
            remove,
            inputs: good
                .iter()
                .map(|(uri, sha, o)| InputEntry {
                    sha256: sha.clone(),
                    uri: uri.clone(),
                    exposure_ids: o.exposures.iter().map(|e| e.exposure_id).collect(),
                })
                .collect(),
            generation: None,
        };
        if commit::try_put(loc, &record).await? {
            // A checkpoint now and then keeps opening the catalog cheap (readers replay only
            // the commits after the newest checkpoint).
            if record.version.is_multiple_of(CHECKPOINT_EVERY) {
                let mut s = snap;
                s.apply(&record);
                if let Err(e) = commit::write_checkpoint(loc, &s).await {
                    tracing::warn!(version = record.version, error = %e, "checkpoint not written");
                }
            }
            return Ok(Some(record.version));
        }
        // Lost the race for this version: re-read and try again.
    }
    Err(catalog::CommitError::Contended {
        uri: loc.uri.clone(),
        attempts: MAX_ATTEMPTS,
    }
    .into())
}

/// Encodes and stores the exposures and sources of the good files of a chunk.
async fn write_increment(
    loc: &Location,
    good: &[(String, String, FileOutcome)],
    run_id: &str,
) -> Result<Vec<FileEntry>, IngestError> {
    let t0 = Instant::now();
    let exposures: Vec<_> = good
        .iter()
        .flat_map(|g| g.2.exposures.iter().cloned())
        .collect();
    let sources: Vec<_> = good
        .iter()
        .flat_map(|g| g.2.sources.iter().cloned())
        .collect();
    let eb = schema::exposures_batch(&exposures).map_err(|source| CatalogError::Batch {
        table: EXPOSURES.into(),
        source,
    })?;
    let sb = schema::sources_batch(&sources).map_err(|source| CatalogError::Batch {
        table: SOURCES.into(),
        source,
    })?;
    let mut add =
        vec![catalog::put_increment_file(loc, EXPOSURES, run_id, &eb, "exposure_id").await?];
    if sb.num_rows() > 0 {
        add.push(catalog::put_increment_file(loc, SOURCES, run_id, &sb, schema::HEALPIX_29).await?);
    }
    metrics()
        .ingest_stage_seconds
        .with_label_values(&["write"])
        .observe(t0.elapsed().as_secs_f64());
    Ok(add)
}

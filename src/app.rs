//! Runs a parsed command line: resolves the configuration and calls the library. `main`
//! only parses, sets up logging and maps the result to an exit code.

use crate::catalog::compact::{self, CompactOptions};
use crate::cli::{
    CalibCommand, Cli, Command, CompactArgs, DemoArgs, FitsCommand, IngestArgs, OutputFormat,
    PreviewArgs, ServeArgs, SqlArgs, WorkerArgs,
};
use crate::config::FileConfig;
use crate::http::shutdown;
use crate::ingest::{self, IngestOptions};
use crate::query::format::{BatchEncoder, Format};
use crate::query::{self, session};
use crate::server::{ServeOptions, Server};
use crate::storage::Location;
use crate::worker::{Worker, WorkerOptions};
use futures::StreamExt;
use std::io::{IsTerminal, Write};

/// Exit codes: 0 success, 1 the work failed (e.g. nothing ingested), 2 bad usage or config.
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct AppError {
    pub code: u8,
    pub message: String,
}

impl<E: std::error::Error> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError {
            code: EXIT_FAILURE,
            message: e.to_string(),
        }
    }
}

fn usage(e: impl std::fmt::Display) -> AppError {
    AppError {
        code: EXIT_USAGE,
        message: e.to_string(),
    }
}

/// Does the logs go to stdout (services) or stderr (commands that print results)?
pub fn stdout_is_output(cli: &Cli) -> bool {
    !matches!(cli.command, Command::Serve(_) | Command::Worker(_))
}

pub async fn run(cli: Cli) -> Result<(), AppError> {
    let file = FileConfig::load(cli.config.as_deref()).map_err(usage)?;
    match cli.command {
        Command::Ingest(a) => ingest_cmd(&file, a).await,
        Command::Serve(a) => serve_cmd(&file, a).await,
        Command::Worker(a) => worker_cmd(&file, a).await,
        Command::Sql(a) => sql_cmd(&file, a).await,
        Command::Compact(a) => compact_cmd(&file, a).await,
        Command::Demo(a) => demo_cmd(a).await,
        Command::Fits { command } => fits_cmd(command),
        Command::Calib { command } => calib_cmd(command),
        Command::Preview(a) => preview_cmd(&file, a),
    }
}

fn preview_cmd(file: &FileConfig, a: PreviewArgs) -> Result<(), AppError> {
    use crate::fits::FitsFile;
    use crate::fits::keywords::Keywords;
    let f = FitsFile::open(&a.file)?;
    let hdu = match a.hdu {
        Some(i) => f.hdu(i)?,
        None => f
            .hdus
            .iter()
            .find(|h| matches!(f.image_dims(h), Ok(Some(d)) if d.n_pixels().unwrap_or(0) > 0))
            .ok_or_else(|| usage(format!("{}: no image HDU", a.file.display())))?,
    };
    let img = f.read_plane::<f32>(hdu, 0)?;
    let kw = Keywords {
        hdu: &hdu.header,
        primary: if hdu.index == 0 {
            None
        } else {
            f.hdus.first().map(|h| &h.header)
        },
    };
    let opts = crate::ingest::pipeline::options_for(&file.extract(&a.extract).map_err(usage)?, &kw);
    let ex = crate::image::extract(img.pixels.clone(), img.width, img.height, &opts);
    let pic = crate::image::preview::render(
        &img.pixels,
        img.width,
        img.height,
        &ex,
        ex.cosmic_mask.as_deref(),
        a.max_size,
    );
    let png = crate::image::png::encode_rgb(pic.width, pic.height, &pic.rgb);
    std::fs::write(&a.out, png).map_err(|e| AppError {
        code: EXIT_FAILURE,
        message: format!("cannot write {}: {e}", a.out.display()),
    })?;
    println!(
        "{}: HDU {}, {}x{} -> {}x{} picture, {} sources circled, {} cosmic-ray pixels in red",
        a.out.display(),
        hdu.index,
        img.width,
        img.height,
        pic.width,
        pic.height,
        ex.sources.len(),
        ex.cosmic_ray_pixels
    );
    Ok(())
}

fn calib_cmd(cmd: CalibCommand) -> Result<(), AppError> {
    use crate::calib::combine::Method;
    use crate::calib::masters::{BuildOptions, build};
    let CalibCommand::Build(a) = cmd;
    if a.bias.is_empty() && a.dark.is_empty() && a.flat.is_empty() {
        return Err(usage("give at least one of --bias, --dark, --flat"));
    }
    if !(a.sigma.is_finite() && a.sigma > 0.0) {
        return Err(usage("--sigma must be a positive number"));
    }
    let method = match a.combine.as_str() {
        "median" => Method::Median,
        "mean" => Method::Mean,
        "clipped-median" => Method::ClippedMedian { sigma: a.sigma },
        "clipped-mean" => Method::ClippedMean { sigma: a.sigma },
        other => {
            return Err(usage(format!(
                "--combine {other}: use clipped-median, clipped-mean, median or mean"
            )));
        }
    };
    let opts = BuildOptions {
        bias: a.bias,
        dark: a.dark,
        flat: a.flat,
        out: a.out,
        method,
    };
    let report = build(&opts).map_err(|message| AppError {
        code: EXIT_FAILURE,
        message,
    })?;
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
        return Err(AppError {
            code: EXIT_FAILURE,
            message: "no master could be built".into(),
        });
    }
    Ok(())
}

fn fits_cmd(cmd: FitsCommand) -> Result<(), AppError> {
    use crate::fits::{FitsFile, inspect};
    let print = |v: &serde_json::Value, json: bool, text: &dyn Fn(&serde_json::Value) -> String| {
        if json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            print!("{}", text(v));
        }
    };
    match cmd {
        FitsCommand::Info { file, json } => {
            let f = FitsFile::open(&file)?;
            print(&inspect::info(&f), json, &inspect::info_text);
        }
        FitsCommand::Stats { file, hdu, json } => {
            let f = FitsFile::open(&file)?;
            let v = inspect::stats(&f, hdu)?;
            print(&v, json, &|v| {
                let keys = [
                    "n",
                    "n_nan",
                    "sum",
                    "mean",
                    "median",
                    "min",
                    "max",
                    "std",
                    "sha256_f64le",
                ];
                keys.iter()
                    .map(|k| format!("{k:>13}: {}\n", v[k]))
                    .collect()
            });
        }
        FitsCommand::Pix2sky {
            file,
            hdu,
            json,
            coords,
        } => {
            if coords.len() % 2 != 0 {
                return Err(usage("pixel coordinates come in pairs: X Y [X Y ...]"));
            }
            let header = crate::fits::inspect::header_for(&file, hdu).map_err(|m| AppError {
                code: EXIT_FAILURE,
                message: m,
            })?;
            let pts: Vec<(f64, f64)> = coords.chunks(2).map(|c| (c[0], c[1])).collect();
            let v = inspect::pix2sky(&header, &pts)?;
            print(&v, json, &|v| {
                let mut s = String::new();
                for (p, w) in v["pixel_0based"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(v["world_deg"].as_array().into_iter().flatten())
                {
                    s.push_str(&format!("{} {} -> {} {}\n", p[0], p[1], w[0], w[1]));
                }
                s
            });
        }
    }
    Ok(())
}

async fn ingest_cmd(file: &FileConfig, a: IngestArgs) -> Result<(), AppError> {
    let mut inputs = a.inputs.clone();
    if let Some(list) = &a.input_list {
        let text = std::fs::read_to_string(list).map_err(|e| AppError {
            code: EXIT_USAGE,
            message: format!("--input-list {}: {e}", list.display()),
        })?;
        inputs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let mut opts = IngestOptions::new(inputs, file.catalog(&a.catalog));
    opts.shard = match (a.shard_index, a.shard_count) {
        (_, Some(0)) => return Err(usage("--shard-count must be at least 1")),
        (Some(i), Some(n)) if i >= n => {
            return Err(usage(format!(
                "--shard-index {i} must be below --shard-count {n}"
            )));
        }
        (i, Some(n)) => Some((i.unwrap_or(0), n)),
        (_, None) => None,
    };
    opts.extract = file.extract(&a.extract).map_err(usage)?;
    opts.fits = file.fits_limits(&a.fits).map_err(usage)?;
    if let Some(dir) = &a.calib {
        let lib = crate::calib::Library::load(dir).map_err(usage)?;
        opts.extract.calib = Some(crate::calib::CalibRef(std::sync::Arc::new(lib)));
    }
    opts.chunk_files = file.chunk_files(a.chunk_files).map_err(usage)?;
    opts.progress = std::io::stderr().is_terminal();
    opts.strict = a.strict;
    opts.reprocess = a.reprocess;
    let report = ingest::run(&opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    if report.success(a.strict) {
        Ok(())
    } else {
        Err(AppError {
            code: EXIT_FAILURE,
            message: if a.strict && !report.failures.is_empty() {
                format!("{} failure(s) with --strict", report.failures.len())
            } else {
                "nothing could be ingested".to_string()
            },
        })
    }
}

async fn compact_cmd(file: &FileConfig, a: CompactArgs) -> Result<(), AppError> {
    let mut opts = CompactOptions::new(file.catalog(&a.catalog));
    if let Some(n) = a.max_rows {
        if n == 0 {
            return Err(usage("--max-rows must be at least 1"));
        }
        opts.max_rows = n;
    }
    if let Some(m) = a.margin_arcsec {
        if !(m > 0.0 && m <= 3600.0) {
            return Err(usage("--margin-arcsec must be in (0, 3600]"));
        }
        opts.margin_arcsec = m;
    }
    if let Some(g) = a.gc_grace_seconds {
        opts.grace = std::time::Duration::from_secs(g);
    }
    if let Some(mb) = a.memory_mb {
        opts.memory_limit = mb.max(16) << 20;
    }
    let report = compact::run(&opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

async fn serve_cmd(file: &FileConfig, a: ServeArgs) -> Result<(), AppError> {
    let opts = file.serve_options(&a).map_err(usage)?;
    let server = Server::build(&opts).await?;
    server.run_until_stopped(shutdown::signal()).await?;
    Ok(())
}

async fn worker_cmd(file: &FileConfig, a: WorkerArgs) -> Result<(), AppError> {
    let addr = a.addr.parse().map_err(|e| AppError {
        code: EXIT_USAGE,
        message: format!("--addr {}: {e}", a.addr),
    })?;
    if a.concurrency == 0 || a.lease_seconds < 3 || a.poll_ms == 0 {
        return Err(AppError {
            code: EXIT_USAGE,
            message: "--concurrency and --poll-ms must be at least 1, --lease-seconds at least 3"
                .into(),
        });
    }
    if a.max_attempts == 0
        || a.job_timeout_seconds == 0
        || a.upload_timeout_seconds == 0
        || a.max_upload_mb == 0
        || a.submit_per_minute == 0
        || a.max_queued_jobs == 0
        || a.max_client_queued_jobs == 0
    {
        return Err(usage(
            "--max-attempts, --job-timeout-seconds, --upload-timeout-seconds, --max-upload-mb, --submit-per-minute, --max-queued-jobs and --max-client-queued-jobs must be at least 1",
        ));
    }
    let mut opts = WorkerOptions::new(file.catalog(&a.catalog), addr);
    opts.concurrency = a.concurrency;
    opts.lease = std::time::Duration::from_secs(a.lease_seconds);
    opts.poll = std::time::Duration::from_millis(a.poll_ms);
    opts.grace = std::time::Duration::from_secs(a.grace_seconds);
    if let Some(s) = a.scratch {
        opts.scratch = s;
    }
    if let Some(t) = a.auth_token.filter(|t| !t.is_empty()) {
        if t.len() < 16 {
            return Err(usage("--auth-token must be at least 16 characters"));
        }
        opts.auth_token = Some(t);
    }
    opts.allowed = std::sync::Arc::new(
        crate::ingest::inputs::InputRoots::parse(&a.allow_inputs).map_err(usage)?,
    );
    opts.max_upload_bytes = a.max_upload_mb << 20;
    opts.max_attempts = a.max_attempts;
    opts.job_timeout = std::time::Duration::from_secs(a.job_timeout_seconds);
    opts.submit_per_minute = a.submit_per_minute;
    opts.max_queued = a.max_queued_jobs;
    opts.max_client_queued = a.max_client_queued_jobs;
    opts.retention = std::time::Duration::from_secs(a.job_retention_hours * 3600);
    opts.fits = file.fits_limits(&a.fits).map_err(usage)?;
    let upload_timeout = std::time::Duration::from_secs(a.upload_timeout_seconds);
    opts.conn = file
        .conn(&a.conn, crate::worker::conn_limits(upload_timeout))
        .map_err(usage)?;
    let worker = Worker::build(opts).await.map_err(|e| AppError {
        code: EXIT_FAILURE,
        message: e.to_string(),
    })?;
    worker
        .run_until_stopped(shutdown::signal())
        .await
        .map_err(|e| AppError {
            code: EXIT_FAILURE,
            message: e.to_string(),
        })
}

async fn sql_cmd(file: &FileConfig, a: SqlArgs) -> Result<(), AppError> {
    let loc = Location::open(&file.catalog(&a.catalog))?;
    let (ctx, _) = session::open(&loc).await?;
    session::register_extra_tables(&ctx, &file.tables(&a.tables)).await?;
    let format = match a.format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
        OutputFormat::Ndjson => Format::Ndjson,
    };
    // A one-off query from the operator's own shell: the structural limits only.
    let limited = query::execute(
        &ctx,
        &a.query,
        None,
        &query::Limits::default(),
        &query::Budget::unlimited(),
    )
    .await?;
    let mut stream = limited.stream;
    let (mut enc, head) = BatchEncoder::new(format, &stream.schema())?;
    let mut out = std::io::stdout().lock();
    out.write_all(&head)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| AppError {
            code: EXIT_FAILURE,
            message: query::clean_message(&e),
        })?;
        out.write_all(&enc.encode(&batch)?)?;
    }
    out.write_all(&enc.finish()?)?;
    if format == Format::Json {
        out.write_all(b"\n")?;
    }
    Ok(())
}

async fn demo_cmd(a: DemoArgs) -> Result<(), AppError> {
    let dir = std::path::PathBuf::from(&a.dir);
    let (inputs, frame) = crate::demo::write_inputs(&dir)?;
    let mut opts = IngestOptions::new(vec![inputs.display().to_string()], a.dir.clone());
    opts.progress = std::io::stderr().is_terminal();
    let report = ingest::run(&opts).await?;
    println!("{report}\n");
    let addr: std::net::SocketAddr = a.addr.parse().map_err(usage)?;
    println!("Example queries (the catalog is at {}):\n", report.catalog);
    for (title, sql) in crate::demo::example_queries(&frame) {
        println!("# {title}\n{}\n", crate::demo::curl(&a.addr, &sql));
    }
    println!(
        "# the same cone in ADQL over IVOA TAP (what pyvo and TOPCAT send), as a VOTable\n{}\n",
        crate::demo::tap_curl(&a.addr, &frame)
    );
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
    server.run_until_stopped(shutdown::signal()).await?;
    Ok(())
}

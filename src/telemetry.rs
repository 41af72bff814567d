//! Logs and metrics, each defined once.
//!
//! Logs: `tracing`, JSON lines when stdout is not a terminal (containers), human-readable on a
//! TTY; filtered by `RUST_LOG` (default `info`).
//!
//! Metrics: Prometheus, prefix `astropipe_`, base units, `_total` on counters, labels bounded
//! (route patterns, stages, reasons; never raw SQL or file paths).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::io::IsTerminal;
use std::sync::LazyLock;

/// Every metric of the process.
pub struct Metrics {
    pub registry: Registry,
    pub build_info: IntGaugeVec,
    pub http_requests: IntCounterVec,
    pub http_request_seconds: HistogramVec,
    pub queries: IntCounterVec,
    pub query_seconds: HistogramVec,
    pub truncated_results: IntCounter,
    pub auth_failures: IntCounterVec,
    pub ingest_files: IntCounterVec,
    pub ingest_bytes: IntCounter,
    pub ingest_sources: IntCounter,
    pub ingest_failures: IntCounterVec,
    pub ingest_stage_seconds: HistogramVec,
    pub catalog_version: IntGauge,
    pub jobs_queue_depth: IntGauge,
    pub jobs_finished: IntCounterVec,
    pub job_seconds: HistogramVec,
    pub http_connections: IntGauge,
    pub http_connections_evicted: IntCounter,
    pub http_connections_refused: IntCounter,
    pub http_connections_timed_out: IntCounter,
    pub refusals: IntCounterVec,
    pub hot_cache_files: IntCounterVec,
    pub hot_cache_loaded_bytes: IntCounter,
    pub hot_cache_bytes: IntGauge,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("astropipe".into()), None)?;
    let latency = vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let m = Metrics {
        build_info: IntGaugeVec::new(
            Opts::new("build_info", "Build information; the value is always 1"),
            &["version"],
        )?,
        http_requests: IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["route", "method", "status"],
        )?,
        http_request_seconds: HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request duration by route pattern",
            )
            .buckets(latency.clone()),
            &["route"],
        )?,
        queries: IntCounterVec::new(
            Opts::new("queries_total", "SQL queries by protocol and outcome"),
            &["protocol", "outcome"],
        )?,
        query_seconds: HistogramVec::new(
            HistogramOpts::new("query_duration_seconds", "SQL query duration by protocol")
                .buckets(latency.clone()),
            &["protocol"],
        )?,
        truncated_results: IntCounter::new(
            "query_truncated_results_total",
            "Query results cut at the row limit",
        )?,
        auth_failures: IntCounterVec::new(
            Opts::new(
                "auth_failures_total",
                "Requests refused for a missing or wrong token, by protocol",
            ),
            &["protocol"],
        )?,
        ingest_files: IntCounterVec::new(
            Opts::new(
                "ingest_files_total",
                "Input files by result (ingested, already_ingested, failed)",
            ),
            &["result"],
        )?,
        ingest_bytes: IntCounter::new("ingest_bytes_total", "Bytes of input files read")?,
        ingest_sources: IntCounter::new("ingest_sources_total", "Sources written to the catalog")?,
        ingest_failures: IntCounterVec::new(
            Opts::new(
                "ingest_failures_total",
                "Ingest failures (files or HDUs) by reason",
            ),
            &["reason"],
        )?,
        ingest_stage_seconds: HistogramVec::new(
            HistogramOpts::new("ingest_stage_duration_seconds", "Ingest stage durations").buckets(
                vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                ],
            ),
            &["stage"],
        )?,
        catalog_version: IntGauge::new("catalog_version", "Catalog version being served")?,
        jobs_queue_depth: IntGauge::new(
            "jobs_queue_depth",
            "Jobs waiting to be processed (queued, or running with a lapsed lease), as this worker last saw the queue",
        )?,
        jobs_finished: IntCounterVec::new(
            Opts::new(
                "jobs_finished_total",
                "Jobs that reached a final state here (succeeded, failed, cancelled)",
            ),
            &["state"],
        )?,
        job_seconds: HistogramVec::new(
            HistogramOpts::new(
                "job_duration_seconds",
                "Job processing time by stage (stage_inputs, ingest, total)",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            &["stage"],
        )?,
        http_connections: IntGauge::new("http_connections", "Open HTTP connections")?,
        http_connections_evicted: IntCounter::new(
            "http_connections_evicted_total",
            "Idle or slow HTTP connections closed to make room for new ones",
        )?,
        http_connections_refused: IntCounter::new(
            "http_connections_refused_total",
            "HTTP connections closed at once: the client or the service had no free slot",
        )?,
        http_connections_timed_out: IntCounter::new(
            "http_connections_timed_out_total",
            "HTTP connections closed because their header, body, idle or request deadline passed",
        )?,
        refusals: IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "Requests refused or cut off by a limit, by limit",
            ),
            &["limit"],
        )?,
        hot_cache_files: IntCounterVec::new(
            Opts::new(
                "hot_cache_files_total",
                "Files a region scan read from the hot-data cache (hit) or from storage (miss)",
            ),
            &["outcome"],
        )?,
        hot_cache_loaded_bytes: IntCounter::new(
            "hot_cache_loaded_bytes_total",
            "Bytes of decoded columns loaded into the hot-data cache",
        )?,
        hot_cache_bytes: IntGauge::new(
            "hot_cache_bytes",
            "Bytes the hot-data cache holds (as of its last load or catalog refresh)",
        )?,
        registry,
    };
    m.registry.register(Box::new(m.build_info.clone()))?;
    m.registry.register(Box::new(m.http_requests.clone()))?;
    m.registry
        .register(Box::new(m.http_request_seconds.clone()))?;
    m.registry.register(Box::new(m.queries.clone()))?;
    m.registry.register(Box::new(m.query_seconds.clone()))?;
    m.registry.register(Box::new(m.truncated_results.clone()))?;
    m.registry.register(Box::new(m.auth_failures.clone()))?;
    m.registry.register(Box::new(m.ingest_files.clone()))?;
    m.registry.register(Box::new(m.ingest_bytes.clone()))?;
    m.registry.register(Box::new(m.ingest_sources.clone()))?;
    m.registry.register(Box::new(m.ingest_failures.clone()))?;
    m.registry
        .register(Box::new(m.ingest_stage_seconds.clone()))?;
    m.registry.register(Box::new(m.catalog_version.clone()))?;
    m.registry.register(Box::new(m.jobs_queue_depth.clone()))?;
    m.registry.register(Box::new(m.jobs_finished.clone()))?;
    m.registry.register(Box::new(m.job_seconds.clone()))?;
    m.registry.register(Box::new(m.http_connections.clone()))?;
    m.registry
        .register(Box::new(m.http_connections_evicted.clone()))?;
    m.registry
        .register(Box::new(m.http_connections_refused.clone()))?;
    m.registry
        .register(Box::new(m.http_connections_timed_out.clone()))?;
    m.registry.register(Box::new(m.refusals.clone()))?;
    m.registry.register(Box::new(m.hot_cache_files.clone()))?;
    m.registry
        .register(Box::new(m.hot_cache_loaded_bytes.clone()))?;
    m.registry.register(Box::new(m.hot_cache_bytes.clone()))?;
    m.build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    Ok(m)
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| build().unwrap_or_else(|e| panic!("metric definitions are invalid: {e}")));

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Prometheus text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let enc = TextEncoder::new();
    if enc.encode(&metrics().registry.gather(), &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Installs the log subscriber (once; later calls are ignored). Services log to stdout;
/// commands whose stdout is their output (`sql`, `fits`, `ingest`) pass `stdout_is_output`
/// and log to stderr.
pub fn init_logging(stdout_is_output: bool) {
    use tracing_subscriber::{EnvFilter, fmt};
    // fitsrs logs at ERROR when a scan reaches the end of a file, which is not an error; our
    // reader reports real problems itself. Silenced unless RUST_LOG names fitsrs.
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let spec = if spec.contains("fitsrs") {
        spec
    } else {
        format!("{spec},fitsrs=off")
    };
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info,fitsrs=off"));
    let tty = if stdout_is_output {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let r = match (tty, stdout_is_output) {
        (true, _) => fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
        (false, true) => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (false, false) => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .try_init(),
    };
    let _ = r;
}

//! The command line (clap derive). Every flag can also come from an `ASTROPIPE_*` environment
//! variable, and most from the TOML config file (`--config`): file < env < flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "astropipe",
    version,
    about = "FITS images in, a HATS sky catalog out, served with SQL"
)]
pub struct Cli {
    /// TOML configuration file (values there are overridden by environment and flags).
    #[arg(long, global = true, env = "ASTROPIPE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process FITS files (files, directories, globs) into the catalog.
    Ingest(IngestArgs),
    /// Serve the catalog over HTTP (SQL, tables, health, metrics).
    Serve(Box<ServeArgs>),
    /// Run the image-processor service: a jobs API whose jobs (ingests) are kept durably in
    /// the catalog's object store and processed by any replica.
    Worker(WorkerArgs),
    /// Run one SQL query against the catalog and print the result.
    Sql(SqlArgs),
    /// Merge committed increments into balanced HATS partitions with a margin cache, and
    /// delete files no committed version needs.
    Compact(CompactArgs),
    /// Build a sample catalog from the bundled FITS files under ./astro-data and serve it.
    Demo(DemoArgs),
    /// Inspect a FITS file: HDUs, pixel statistics, pixel -> sky.
    Fits {
        #[command(subcommand)]
        command: FitsCommand,
    },
    /// Draw one image as a PNG: asinh-stretched, detections circled, cosmic rays in red.
    Preview(PreviewArgs),
    /// Calibration masters: build them from raw bias, dark and flat frames.
    Calib {
        #[command(subcommand)]
        command: CalibCommand,
    },
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A FITS file.
    pub file: PathBuf,
    /// HDU to draw [default: the first with an image]
    #[arg(long)]
    pub hdu: Option<usize>,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Bin larger images down to at most this many pixels on a side
    #[arg(long, default_value_t = 2048)]
    pub max_size: usize,
    #[command(flatten)]
    pub extract: ExtractArgs,
}

#[derive(Debug, Subcommand)]
pub enum CalibCommand {
    /// Combine raw frames into master bias, dark (rate) and per-filter flats (with a
    /// bad-pixel mask), written as FITS with provenance keywords; `ingest --calib DIR` uses
    /// them.
    Build(CalibBuildArgs),
}

#[derive(Debug, Args)]
pub struct CalibBuildArgs {
    /// Raw bias frames.
    #[arg(long, num_args = 1..)]
    pub bias: Vec<PathBuf>,
    /// Raw dark frames (EXPTIME required).
    #[arg(long, num_args = 1..)]
    pub dark: Vec<PathBuf>,
    /// Raw flat frames (grouped by FILTER).
    #[arg(long, num_args = 1..)]
    pub flat: Vec<PathBuf>,
    /// Directory the masters are written to.
    #[arg(long)]
    pub out: PathBuf,
    /// How frames are combined
    #[arg(long, value_enum, default_value_t = Combine::ClippedMedian)]
    pub combine: Combine,
    /// Clipping threshold in standard deviations
    #[arg(long, default_value_t = 3.0)]
    pub sigma: f32,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How `calib build` combines a stack of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Combine {
    /// σ-clipped median (`--sigma`)
    ClippedMedian,
    /// σ-clipped mean (`--sigma`)
    ClippedMean,
    Median,
    Mean,
}

#[derive(Debug, Subcommand)]
pub enum FitsCommand {
    /// HDUs: index, type, BITPIX, axes, compression, WCS CTYPEs, checksum status.
    Info {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Statistics of the physical pixel values of one HDU (NaN/BLANK ignored).
    Stats {
        file: PathBuf,
        #[arg(long, default_value_t = 0)]
        hdu: usize,
        #[arg(long)]
        json: bool,
    },
    /// World coordinates (degrees, the WCS's own frame, axis order) of 0-based pixels.
    Pix2sky {
        /// A FITS file, or a bare header file (.hdr).
        file: PathBuf,
        /// HDU [default: the first with a celestial WCS]
        #[arg(long)]
        hdu: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Pixel coordinates: X Y [X Y ...]
        #[arg(required = true, num_args = 2.., allow_negative_numbers = true)]
        coords: Vec<f64>,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct CatalogArg {
    /// Catalog location: a local path, file:// URL, or s3://bucket/prefix [default: ./astro-data]
    #[arg(long, env = "ASTROPIPE_CATALOG")]
    pub catalog: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ExtractArgs {
    /// Detection threshold in units of the background RMS [default: 1.5]
    #[arg(long, env = "ASTROPIPE_THRESH")]
    pub thresh: Option<f32>,
    /// Minimum number of pixels of a detection [default: 5]
    #[arg(long, env = "ASTROPIPE_MIN_AREA")]
    pub min_area: Option<usize>,
    /// Background mesh size in pixels [default: 64]
    #[arg(long, env = "ASTROPIPE_BACK_MESH")]
    pub back_mesh: Option<usize>,
    /// Background median filter size in meshes [default: 3]
    #[arg(long, env = "ASTROPIPE_BACK_FILTER")]
    pub back_filter: Option<usize>,
    /// Radii of the circular apertures in pixels, comma-separated [default: 3,5,8]
    #[arg(long, env = "ASTROPIPE_APERTURES", value_delimiter = ',')]
    pub apertures: Option<Vec<f64>>,
    /// Turn cosmic-ray rejection (L.A.Cosmic) off
    #[arg(long, env = "ASTROPIPE_NO_COSMICS")]
    pub no_cosmics: bool,
    /// L.A.Cosmic: Laplacian-to-noise threshold of a hit [default: 4.5]
    #[arg(long, env = "ASTROPIPE_CR_SIGCLIP")]
    pub cr_sigclip: Option<f32>,
    /// L.A.Cosmic: fine-structure contrast limit [default: 5]
    #[arg(long, env = "ASTROPIPE_CR_OBJLIM")]
    pub cr_objlim: Option<f32>,
    /// Read noise in electrons when the header has no RDNOISE [default: 6.5]
    #[arg(long, env = "ASTROPIPE_READNOISE")]
    pub readnoise: Option<f32>,
    /// Saturation level in ADU when the header has no SATURATE
    #[arg(long, env = "ASTROPIPE_SATURATION")]
    pub saturation: Option<f64>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// FITS files, directories (searched recursively), glob patterns, or object-store URIs
    /// (`s3://bucket/key.fits`, or a prefix `s3://bucket/night/` listed recursively).
    #[arg(required_unless_present = "input_list")]
    pub inputs: Vec<String>,
    /// A file listing inputs, one per line (blank lines and `#` comments ignored).
    #[arg(long, env = "ASTROPIPE_INPUT_LIST")]
    pub input_list: Option<PathBuf>,
    /// Process only share INDEX of SHARD_COUNT of the sorted inputs (a Kubernetes Indexed
    /// Job's pods each take theirs) [default: JOB_COMPLETION_INDEX when set]
    #[arg(long, env = "JOB_COMPLETION_INDEX", requires = "shard_count")]
    pub shard_index: Option<usize>,
    /// Number of shards the inputs are split into.
    #[arg(long, env = "ASTROPIPE_SHARD_COUNT")]
    pub shard_count: Option<usize>,
    #[command(flatten)]
    pub catalog: CatalogArg,
    #[command(flatten)]
    pub extract: ExtractArgs,
    /// Fail (exit code 1) when any file or HDU fails, not only when nothing was ingested.
    #[arg(long, env = "ASTROPIPE_STRICT")]
    pub strict: bool,
    /// Files per committed increment [default: 64]
    #[arg(long, env = "ASTROPIPE_CHUNK_FILES")]
    pub chunk_files: Option<usize>,
    /// Process inputs already in the catalog again and replace their rows (atomically).
    #[arg(long, env = "ASTROPIPE_REPROCESS")]
    pub reprocess: bool,
    #[command(flatten)]
    pub fits: FitsLimitArgs,
    /// Calibrate with the masters in this directory (made by `astropipe calib build`):
    /// bias, dark and flat matched by instrument, binning, filter and nearest date.
    #[arg(long, env = "ASTROPIPE_CALIB")]
    pub calib: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// Most rows in one HATS partition (hats_max_rows) [default: 1000000]
    #[arg(long, env = "ASTROPIPE_MAX_ROWS")]
    pub max_rows: Option<u64>,
    /// Margin cache threshold in arcseconds [default: 10]
    #[arg(long, env = "ASTROPIPE_MARGIN_ARCSEC")]
    pub margin_arcsec: Option<f64>,
    /// Unreferenced files are deleted only when older than this many seconds [default: 3600]
    #[arg(long, env = "ASTROPIPE_GC_GRACE_SECONDS")]
    pub gc_grace_seconds: Option<u64>,
    /// Memory for sorting before spilling to disk, MiB [default: 1024]
    #[arg(long, env = "ASTROPIPE_COMPACT_MEMORY_MB")]
    pub memory_mb: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct TablesArg {
    /// Also serve an existing HATS catalog or Parquet dataset (local or s3://) as table NAME;
    /// repeatable.
    #[arg(
        long = "table",
        value_name = "NAME=URI",
        env = "ASTROPIPE_TABLES",
        value_delimiter = ','
    )]
    pub tables: Vec<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub catalog: CatalogArg,
    #[command(flatten)]
    pub tables: TablesArg,
    /// Address of the Arrow Flight SQL endpoint (off unless given), e.g. 127.0.0.1:50051
    #[arg(long, env = "ASTROPIPE_FLIGHT_ADDR")]
    pub flight_addr: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on every query endpoint (HTTP, TAP, SCS, Flight SQL);
    /// probes and metrics stay open.
    #[arg(long, env = "ASTROPIPE_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Longest a query may run, seconds [default: 60]
    #[arg(long, env = "ASTROPIPE_QUERY_TIMEOUT_SECONDS")]
    pub query_timeout_seconds: Option<u64>,
    /// Memory one query may use, MiB [default: 1024]
    #[arg(long, env = "ASTROPIPE_QUERY_MEMORY_MB")]
    pub query_memory_mb: Option<usize>,
    /// Most rows a result may have; larger results are truncated and say so [default: 1000000]
    #[arg(long, env = "ASTROPIPE_ROW_LIMIT")]
    pub row_limit: Option<usize>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "ASTROPIPE_ADDR")]
    pub addr: Option<String>,
    /// Seconds between checks for newly committed catalog versions [default: 5]
    #[arg(long, env = "ASTROPIPE_REFRESH_SECONDS")]
    pub refresh_seconds: Option<u64>,
    #[command(flatten)]
    pub query_limits: QueryLimitArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// What queries may cost (`serve`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Query limits")]
pub struct QueryLimitArgs {
    /// Memory all queries together may use, MiB [default: half the container's memory]
    #[arg(long, env = "ASTROPIPE_MEMORY_MB")]
    pub memory_mb: Option<usize>,
    /// Bytes one query may spill to disk, MiB; 0 turns spilling off [default: 1024]
    #[arg(long, env = "ASTROPIPE_QUERY_SPILL_MB")]
    pub query_spill_mb: Option<u64>,
    /// Bytes all queries together may spill, MiB [default: 4096]
    #[arg(long, env = "ASTROPIPE_SPILL_MB")]
    pub spill_mb: Option<u64>,
    /// Memory for the decoded columns of hot partitions, which cones then read without
    /// touching storage; 0 turns the cache off, MiB [default: 256, at most 1/8 of the
    /// container's memory]
    #[arg(long, env = "ASTROPIPE_HOT_CACHE_MB")]
    pub hot_cache_mb: Option<u64>,
    /// Most bytes of one result; larger results are cut and say so [default: 1024]
    #[arg(long, env = "ASTROPIPE_RESULT_MB")]
    pub result_mb: Option<usize>,
    /// Longest SQL or ADQL statement accepted, bytes [default: 262144]
    #[arg(long, env = "ASTROPIPE_MAX_QUERY_BYTES")]
    pub max_query_bytes: Option<usize>,
    /// Deepest nesting of expressions, subqueries and brackets, and longest chain of
    /// AND/OR/+/UNION/JOIN, in a statement [default: 128]
    #[arg(long, env = "ASTROPIPE_MAX_QUERY_DEPTH")]
    pub max_query_depth: Option<usize>,
    /// Largest value a function such as repeat, lpad or array_repeat may build, MiB [default: 16]
    #[arg(long, env = "ASTROPIPE_MAX_VALUE_MB")]
    pub max_value_mb: Option<usize>,
    /// Queries one client may run at once [default: 4]
    #[arg(long, env = "ASTROPIPE_MAX_CLIENT_QUERIES")]
    pub max_client_queries: Option<usize>,
    /// Flight SQL prepared statements one client may keep open (each closes after an hour
    /// unused) [default: 64]
    #[arg(long, env = "ASTROPIPE_MAX_CLIENT_PREPARED")]
    pub max_client_prepared: Option<usize>,
    /// Async TAP jobs one client may keep [default: 32]
    #[arg(long, env = "ASTROPIPE_MAX_CLIENT_TAP_JOBS")]
    pub max_client_tap_jobs: Option<usize>,
    /// Where async TAP jobs and their results are kept, shared by every replica (a local
    /// directory or s3:// URI) [default: the catalog, under _tap/]
    #[arg(long, env = "ASTROPIPE_TAP_JOBS")]
    pub tap_jobs: Option<String>,
    /// Bytes of async TAP results kept, all jobs together, MiB [default: 8192]
    #[arg(long, env = "ASTROPIPE_TAP_RESULTS_MB")]
    pub tap_results_mb: Option<u64>,
    /// Bytes of TAP_UPLOAD tables one request may carry, MiB [default: 16]
    #[arg(long, env = "ASTROPIPE_TAP_UPLOAD_MB")]
    pub tap_upload_mb: Option<u64>,
    /// URL prefixes TAP_UPLOAD may fetch tables from (`UPLOAD=t,https://...`), comma-separated,
    /// e.g. `https://archive.example.org/`; redirects are not followed [default: none, URL
    /// uploads refused]
    #[arg(long, env = "ASTROPIPE_TAP_UPLOAD_URLS", value_delimiter = ',')]
    pub tap_upload_urls: Vec<String>,
    /// The service's public base URL, for links in results (ObsCore access_url) [default:
    /// http:// and the address it listens on]
    #[arg(long, env = "ASTROPIPE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// Connection deadlines and caps (`serve`, `worker`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Connections")]
pub struct ConnArgs {
    /// Seconds a client has to send a complete request header [default: 10]
    #[arg(long, env = "ASTROPIPE_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a client has to send a request body [default: 30]
    #[arg(long, env = "ASTROPIPE_BODY_TIMEOUT_SECONDS")]
    pub body_timeout_seconds: Option<u64>,
    /// Seconds a keep-alive connection may wait for its next request [default: 60]
    #[arg(long, env = "ASTROPIPE_IDLE_TIMEOUT_SECONDS")]
    pub idle_timeout_seconds: Option<u64>,
    /// Open connections at most (idle and slow ones are closed first to make room)
    /// [default: 3/4 of the file-descriptor limit, at most 4096]
    #[arg(long, env = "ASTROPIPE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections one client address may hold [default: a quarter of --max-connections]
    #[arg(long, env = "ASTROPIPE_MAX_CLIENT_CONNECTIONS")]
    pub max_client_connections: Option<usize>,
    /// A proxy (address or CIDR) whose X-Forwarded-For/-Host/-Proto are believed; repeatable
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "ASTROPIPE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub catalog: CatalogArg,
    /// Address of the jobs API, probes and metrics
    #[arg(long, env = "ASTROPIPE_WORKER_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: String,
    /// Jobs processed at once (each ingest uses every core)
    #[arg(long, env = "ASTROPIPE_WORKER_CONCURRENCY", default_value_t = 1)]
    pub concurrency: usize,
    /// Seconds a claim on a job lasts without renewal (a killed worker's jobs are taken over
    /// after this)
    #[arg(long, env = "ASTROPIPE_WORKER_LEASE_SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,
    /// Milliseconds between scans of the queue
    #[arg(long, env = "ASTROPIPE_WORKER_POLL_MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Seconds SIGTERM waits for running jobs before giving them back to the queue
    #[arg(long, env = "ASTROPIPE_WORKER_GRACE_SECONDS", default_value_t = 25)]
    pub grace_seconds: u64,
    /// Directory for uploaded inputs [default: $TMPDIR/astropipe-worker]
    #[arg(long, env = "ASTROPIPE_WORKER_SCRATCH")]
    pub scratch: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on the jobs API (at least 16 characters); probes
    /// and metrics stay open.
    #[arg(long, env = "ASTROPIPE_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// A directory or s3://bucket/prefix job inputs may name (repeatable); without one the
    /// jobs API takes uploads only
    #[arg(
        long = "allow-input",
        value_name = "DIR|s3://BUCKET/PREFIX",
        env = "ASTROPIPE_ALLOW_INPUTS",
        value_delimiter = ','
    )]
    pub allow_inputs: Vec<String>,
    /// Largest uploaded FITS body, MiB
    #[arg(long, env = "ASTROPIPE_MAX_UPLOAD_MB", default_value_t = 2048)]
    pub max_upload_mb: u64,
    /// Seconds an upload may take to arrive
    #[arg(long, env = "ASTROPIPE_UPLOAD_TIMEOUT_SECONDS", default_value_t = 600)]
    pub upload_timeout_seconds: u64,
    /// Runs of one job (a worker that dies on it counts) before it ends failed
    #[arg(long, env = "ASTROPIPE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Longest one run of a job may take, seconds
    #[arg(long, env = "ASTROPIPE_JOB_TIMEOUT_SECONDS", default_value_t = 3600)]
    pub job_timeout_seconds: u64,
    /// Jobs one client may submit per minute
    #[arg(long, env = "ASTROPIPE_SUBMIT_PER_MINUTE", default_value_t = 60)]
    pub submit_per_minute: u32,
    /// Jobs waiting at most; submissions beyond get 429
    #[arg(long, env = "ASTROPIPE_MAX_QUEUED_JOBS", default_value_t = 10_000)]
    pub max_queued_jobs: usize,
    /// Jobs one client may have waiting
    #[arg(
        long,
        env = "ASTROPIPE_MAX_CLIENT_QUEUED_JOBS",
        default_value_t = 1_000
    )]
    pub max_client_queued_jobs: usize,
    /// Hours finished jobs are kept
    #[arg(long, env = "ASTROPIPE_JOB_RETENTION_HOURS", default_value_t = 168)]
    pub job_retention_hours: u64,
    #[command(flatten)]
    pub fits: FitsLimitArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// What an input FITS file may claim (`ingest`, `worker`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Input limits")]
pub struct FitsLimitArgs {
    /// Most pixels of one image (plain or compressed) [default: 268435456, a 16384² image]
    #[arg(long, env = "ASTROPIPE_MAX_IMAGE_PIXELS")]
    pub max_image_pixels: Option<u64>,
    /// Most cards in one header [default: 100000]
    #[arg(long, env = "ASTROPIPE_MAX_HEADER_CARDS")]
    pub max_header_cards: Option<usize>,
    /// Largest file once decompressed, MiB [default: 4096]
    #[arg(long, env = "ASTROPIPE_MAX_DECOMPRESSED_MB")]
    pub max_decompressed_mb: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL query.
    pub query: String,
    #[command(flatten)]
    pub catalog: CatalogArg,
    #[command(flatten)]
    pub tables: TablesArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the demo catalog (the bundled inputs go to DIR/inputs).
    #[arg(long, default_value = "./astro-data")]
    pub dir: String,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Build the catalog and print the example queries, but do not serve.
    #[arg(long)]
    pub no_serve: bool,
}

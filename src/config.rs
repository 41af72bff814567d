//! One validated configuration: TOML file < `ASTROPIPE_*` environment < flags (clap has
//! already merged environment and flags; the file fills what they left unset), then defaults.

use crate::cli::{
    CalibBuildArgs, CatalogArg, Combine, CompactArgs, ExtractArgs, IngestArgs, ServeArgs,
    WorkerArgs,
};
use crate::compact::CompactOptions;
use crate::http::conn::ConnLimits;
use crate::image::ExtractOptions;
use crate::ingest::IngestOptions;
use crate::server::ServeOptions;
use crate::worker::WorkerOptions;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub const DEFAULT_CATALOG: &str = "./astro-data";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid setting {key} = {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("--input-list {path}: {source}")]
    InputList {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--calib: {0}")]
    Calib(#[from] crate::calib::CalibError),
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub catalog: Option<String>,
    #[serde(default)]
    pub serve: ServeSection,
    #[serde(default)]
    pub ingest: IngestSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    pub addr: Option<String>,
    pub refresh_seconds: Option<u64>,
    #[serde(default)]
    pub tables: Vec<String>,
    pub flight_addr: Option<String>,
    pub auth_token: Option<String>,
    pub query_timeout_seconds: Option<u64>,
    pub query_memory_mb: Option<usize>,
    pub row_limit: Option<usize>,
    pub memory_mb: Option<usize>,
    pub query_spill_mb: Option<u64>,
    pub spill_mb: Option<u64>,
    pub hot_cache_mb: Option<u64>,
    pub result_mb: Option<usize>,
    pub max_query_bytes: Option<usize>,
    pub max_query_depth: Option<usize>,
    pub max_value_mb: Option<usize>,
    pub max_client_queries: Option<usize>,
    pub max_client_prepared: Option<usize>,
    pub max_client_tap_jobs: Option<usize>,
    pub tap_jobs: Option<String>,
    pub tap_results_mb: Option<u64>,
    pub tap_upload_mb: Option<u64>,
    #[serde(default)]
    pub tap_upload_urls: Vec<String>,
    pub public_url: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub header_timeout_seconds: Option<u64>,
    pub body_timeout_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_client_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    pub thresh: Option<f32>,
    pub min_area: Option<usize>,
    pub back_mesh: Option<usize>,
    pub back_filter: Option<usize>,
    pub apertures: Option<Vec<f64>>,
    pub chunk_files: Option<usize>,
    pub cosmics: Option<bool>,
    pub cr_sigclip: Option<f32>,
    pub cr_sigfrac: Option<f32>,
    pub cr_objlim: Option<f32>,
    pub cr_niter: Option<usize>,
    pub readnoise: Option<f32>,
    pub saturation: Option<f64>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    pub fn catalog(&self, arg: &CatalogArg) -> String {
        arg.catalog
            .clone()
            .or_else(|| self.catalog.clone())
            .unwrap_or_else(|| DEFAULT_CATALOG.to_string())
    }

    pub fn extract(&self, a: &ExtractArgs) -> Result<ExtractOptions, ConfigError> {
        let mut o = ExtractOptions::default();
        let f = &self.ingest;
        if let Some(t) = a.thresh.or(f.thresh) {
            if !(t.is_finite() && t > 0.0) {
                return Err(invalid("thresh", t, "must be a positive number"));
            }
            o.detect.thresh_sigma = t;
        }
        if let Some(n) = a.min_area.or(f.min_area) {
            if n == 0 {
                return Err(invalid("min_area", n, "must be at least 1"));
            }
            o.detect.min_area = n;
        }
        if let Some(m) = a.back_mesh.or(f.back_mesh) {
            if !(8..=4096).contains(&m) {
                return Err(invalid("back_mesh", m, "must be between 8 and 4096 pixels"));
            }
            o.background.mesh = m;
        }
        if let Some(m) = a.back_filter.or(f.back_filter) {
            if m == 0 || m % 2 == 0 {
                return Err(invalid("back_filter", m, "must be an odd number of meshes"));
            }
            o.background.filter = m;
        }
        if let Some(r) = a.apertures.clone().or_else(|| f.apertures.clone()) {
            if r.is_empty() || r.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(invalid(
                    "apertures",
                    format!("{r:?}"),
                    "must be positive radii in pixels",
                ));
            }
            o.measure.aperture_radii = r;
        }
        if let Some(level) = a.saturation.or(f.saturation) {
            if !level.is_finite() {
                return Err(invalid("saturation", level, "must be a number"));
            }
            o.saturation = Some(level);
        }
        if a.no_cosmics || f.cosmics == Some(false) {
            o.cosmic = None;
        }
        if let Some(c) = o.cosmic.as_mut() {
            let positive = |name: &'static str, v: Option<f32>, into: &mut f32| {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(invalid(name, v, "must be a positive number"));
                    }
                    *into = v;
                }
                Ok(())
            };
            positive("cr_sigclip", a.cr_sigclip.or(f.cr_sigclip), &mut c.sigclip)?;
            positive("cr_sigfrac", f.cr_sigfrac, &mut c.sigfrac)?;
            positive("cr_objlim", a.cr_objlim.or(f.cr_objlim), &mut c.objlim)?;
            positive("readnoise", a.readnoise.or(f.readnoise), &mut c.readnoise)?;
            if let Some(n) = f.cr_niter {
                c.niter = n;
            }
            o.readnoise_set = a.readnoise.or(f.readnoise).is_some();
        }
        Ok(o)
    }

    pub fn chunk_files(&self, arg: Option<usize>) -> Result<usize, ConfigError> {
        let n = arg.or(self.ingest.chunk_files).unwrap_or(64);
        if n == 0 {
            return Err(invalid("chunk_files", n, "must be at least 1"));
        }
        Ok(n)
    }

    pub fn addr(&self, a: &ServeArgs) -> Result<SocketAddr, ConfigError> {
        let s = a
            .addr
            .clone()
            .or_else(|| self.serve.addr.clone())
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        s.parse()
            .map_err(|e: std::net::AddrParseError| invalid("addr", s, &e.to_string()))
    }

    pub fn refresh(&self, a: &ServeArgs) -> Result<Duration, ConfigError> {
        let s = a
            .refresh_seconds
            .or(self.serve.refresh_seconds)
            .unwrap_or(5);
        if s == 0 {
            return Err(invalid("refresh_seconds", s, "must be at least 1"));
        }
        Ok(Duration::from_secs(s))
    }
}

impl FileConfig {
    /// `--table` specs: flags (or environment) first, else the file's.
    pub fn tables(&self, a: &crate::cli::TablesArg) -> Vec<String> {
        if a.tables.is_empty() {
            self.serve.tables.clone()
        } else {
            a.tables.clone()
        }
    }

    pub fn flight_addr(&self, a: &ServeArgs) -> Result<Option<SocketAddr>, ConfigError> {
        match a
            .flight_addr
            .clone()
            .or_else(|| self.serve.flight_addr.clone())
        {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e: std::net::AddrParseError| invalid("flight_addr", s, &e.to_string())),
        }
    }

    pub fn auth_token(&self, a: &ServeArgs) -> Result<Option<String>, ConfigError> {
        match a
            .auth_token
            .clone()
            .or_else(|| self.serve.auth_token.clone())
        {
            Some(t) if t.len() < 16 => Err(invalid(
                "auth_token",
                "(hidden)",
                "must be at least 16 characters",
            )),
            other => Ok(other),
        }
    }

    pub fn limits(&self, a: &ServeArgs) -> Result<crate::query::Limits, ConfigError> {
        let f = &self.serve;
        let q = &a.query_limits;
        let timeout = a
            .query_timeout_seconds
            .or(f.query_timeout_seconds)
            .unwrap_or(60);
        let memory = a.query_memory_mb.or(f.query_memory_mb).unwrap_or(1024);
        let rows = a.row_limit.or(f.row_limit).unwrap_or(1_000_000);
        let result_mb = q.result_mb.or(f.result_mb).unwrap_or(1024);
        let spill_mb = q.query_spill_mb.or(f.query_spill_mb).unwrap_or(1024);
        let statement = q
            .max_query_bytes
            .or(f.max_query_bytes)
            .unwrap_or(crate::query::limits::DEFAULT_MAX_STATEMENT_BYTES);
        let depth = q
            .max_query_depth
            .or(f.max_query_depth)
            .unwrap_or(crate::query::limits::DEFAULT_MAX_DEPTH);
        let value_mb = q
            .max_value_mb
            .or(f.max_value_mb)
            .unwrap_or(crate::query::limits::DEFAULT_MAX_VALUE_BYTES >> 20);
        if timeout == 0 {
            return Err(invalid(
                "query_timeout_seconds",
                timeout,
                "must be at least 1",
            ));
        }
        if memory < 16 {
            return Err(invalid("query_memory_mb", memory, "must be at least 16"));
        }
        if rows == 0 {
            return Err(invalid("row_limit", rows, "must be at least 1"));
        }
        if result_mb == 0 {
            return Err(invalid("result_mb", result_mb, "must be at least 1"));
        }
        if !(64..=(64 << 20)).contains(&statement) {
            return Err(invalid(
                "max_query_bytes",
                statement,
                "must be between 64 and 67108864",
            ));
        }
        if !(8..=4096).contains(&depth) {
            return Err(invalid(
                "max_query_depth",
                depth,
                "must be between 8 and 4096",
            ));
        }
        if value_mb == 0 {
            return Err(invalid("max_value_mb", value_mb, "must be at least 1"));
        }
        Ok(crate::query::Limits {
            timeout: Some(Duration::from_secs(timeout)),
            memory: Some(memory << 20),
            max_rows: Some(rows),
            max_result_bytes: Some(result_mb << 20),
            spill_bytes: Some(spill_mb << 20),
            max_statement_bytes: statement,
            max_depth: depth,
            max_value_bytes: value_mb << 20,
        })
    }

    /// Connection deadlines and caps from `--header-timeout-seconds` and friends (the
    /// `[serve]` section of the file is shared with the worker's).
    pub fn conn(
        &self,
        a: &crate::cli::ConnArgs,
        base: ConnLimits,
    ) -> Result<ConnLimits, ConfigError> {
        let f = &self.serve;
        let secs = |key: &'static str, v: Option<u64>, d: Duration| match v {
            Some(0) => Err(invalid(key, 0, "must be at least 1")),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(d),
        };
        let mut c = base;
        c.header_timeout = secs(
            "header_timeout_seconds",
            a.header_timeout_seconds.or(f.header_timeout_seconds),
            c.header_timeout,
        )?;
        c.body_timeout = secs(
            "body_timeout_seconds",
            a.body_timeout_seconds.or(f.body_timeout_seconds),
            c.body_timeout,
        )?;
        c.idle_timeout = secs(
            "idle_timeout_seconds",
            a.idle_timeout_seconds.or(f.idle_timeout_seconds),
            c.idle_timeout,
        )?;
        if let Some(n) = a.max_connections.or(f.max_connections) {
            if n < 4 {
                return Err(invalid("max_connections", n, "must be at least 4"));
            }
            c.max_connections = n;
            c.max_client_connections = (n / 4).max(1);
        }
        if let Some(n) = a.max_client_connections.or(f.max_client_connections) {
            if n == 0 {
                return Err(invalid("max_client_connections", n, "must be at least 1"));
            }
            c.max_client_connections = n;
        }
        let proxies = if a.trusted_proxies.is_empty() {
            &f.trusted_proxies
        } else {
            &a.trusted_proxies
        };
        let mut nets = Vec::new();
        for p in proxies.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let net = p
                .parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| invalid("trusted_proxy", p, "must be an IP address or CIDR"))?;
            nets.push(net);
        }
        c.trusted_proxies = std::sync::Arc::new(nets);
        Ok(c)
    }

    /// What input files may claim.
    pub fn fits_limits(
        &self,
        a: &crate::cli::FitsLimitArgs,
    ) -> Result<crate::fits::FitsLimits, ConfigError> {
        let mut l = crate::fits::FitsLimits::default();
        if let Some(n) = a.max_image_pixels {
            if n < 1024 {
                return Err(invalid("max_image_pixels", n, "must be at least 1024"));
            }
            l.max_pixels = n;
        }
        if let Some(n) = a.max_header_cards {
            if n < 36 {
                return Err(invalid("max_header_cards", n, "must be at least 36"));
            }
            l.max_header_cards = n;
        }
        if let Some(mb) = a.max_decompressed_mb {
            if mb == 0 {
                return Err(invalid("max_decompressed_mb", mb, "must be at least 1"));
            }
            l.max_bytes = mb << 20;
        }
        Ok(l)
    }

    /// Everything `ingest` needs, validated: inputs (with `--input-list`), the shard, the
    /// extraction and input limits, the calibration masters.
    pub fn ingest_options(&self, a: &IngestArgs) -> Result<IngestOptions, ConfigError> {
        let mut inputs = a.inputs.clone();
        if let Some(list) = &a.input_list {
            let text = std::fs::read_to_string(list).map_err(|source| ConfigError::InputList {
                path: list.display().to_string(),
                source,
            })?;
            inputs.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        let mut opts = IngestOptions::new(inputs, self.catalog(&a.catalog));
        opts.shard = match (a.shard_index, a.shard_count) {
            (_, Some(0)) => return Err(invalid("shard_count", 0, "must be at least 1")),
            (Some(i), Some(n)) if i >= n => {
                return Err(invalid(
                    "shard_index",
                    i,
                    &format!("must be below --shard-count {n}"),
                ));
            }
            (i, Some(n)) => Some((i.unwrap_or(0), n)),
            (_, None) => None,
        };
        opts.extract = self.extract(&a.extract)?;
        opts.fits = self.fits_limits(&a.fits)?;
        if let Some(dir) = &a.calib {
            opts.calib = Some(std::sync::Arc::new(crate::calib::Library::load(dir)?));
        }
        opts.chunk_files = self.chunk_files(a.chunk_files)?;
        opts.strict = a.strict;
        opts.reprocess = a.reprocess;
        Ok(opts)
    }

    /// Everything `compact` needs, validated.
    pub fn compact_options(&self, a: &CompactArgs) -> Result<CompactOptions, ConfigError> {
        let mut opts = CompactOptions::new(self.catalog(&a.catalog));
        if let Some(n) = a.max_rows {
            if n == 0 {
                return Err(invalid("max_rows", n, "must be at least 1"));
            }
            opts.max_rows = n;
        }
        if let Some(m) = a.margin_arcsec {
            if !(m > 0.0 && m <= 3600.0) {
                return Err(invalid("margin_arcsec", m, "must be in (0, 3600]"));
            }
            opts.margin_arcsec = m;
        }
        if let Some(g) = a.gc_grace_seconds {
            opts.grace = Duration::from_secs(g);
        }
        if let Some(mb) = a.memory_mb {
            opts.memory_limit = mb.max(16) << 20;
        }
        Ok(opts)
    }

    /// Everything `worker` needs, validated.
    pub fn worker_options(&self, a: &WorkerArgs) -> Result<WorkerOptions, ConfigError> {
        let addr: SocketAddr = a
            .addr
            .parse()
            .map_err(|e: std::net::AddrParseError| invalid("addr", &a.addr, &e.to_string()))?;
        let at_least = |key: &'static str, v: u64, min: u64| {
            if v < min {
                Err(invalid(key, v, &format!("must be at least {min}")))
            } else {
                Ok(v)
            }
        };
        at_least("concurrency", a.concurrency as u64, 1)?;
        at_least("lease_seconds", a.lease_seconds, 3)?;
        at_least("poll_ms", a.poll_ms, 1)?;
        at_least("max_attempts", a.max_attempts as u64, 1)?;
        at_least("job_timeout_seconds", a.job_timeout_seconds, 1)?;
        at_least("upload_timeout_seconds", a.upload_timeout_seconds, 1)?;
        at_least("max_upload_mb", a.max_upload_mb, 1)?;
        at_least("submit_per_minute", a.submit_per_minute as u64, 1)?;
        at_least("max_queued_jobs", a.max_queued_jobs as u64, 1)?;
        at_least("max_client_queued_jobs", a.max_client_queued_jobs as u64, 1)?;
        let mut opts = WorkerOptions::new(self.catalog(&a.catalog), addr);
        opts.concurrency = a.concurrency;
        opts.lease = Duration::from_secs(a.lease_seconds);
        opts.poll = Duration::from_millis(a.poll_ms);
        opts.grace = Duration::from_secs(a.grace_seconds);
        if let Some(s) = &a.scratch {
            opts.scratch = s.clone();
        }
        if let Some(t) = a.auth_token.as_ref().filter(|t| !t.is_empty()) {
            if t.len() < 16 {
                return Err(invalid(
                    "auth_token",
                    "(hidden)",
                    "must be at least 16 characters",
                ));
            }
            opts.auth_token = Some(t.clone());
        }
        opts.allowed = std::sync::Arc::new(
            crate::ingest::inputs::InputRoots::parse(&a.allow_inputs)
                .map_err(|e| invalid("allow_input", &a.allow_inputs, &e.to_string()))?,
        );
        opts.max_upload_bytes = a.max_upload_mb << 20;
        opts.max_attempts = a.max_attempts;
        opts.job_timeout = Duration::from_secs(a.job_timeout_seconds);
        opts.submit_per_minute = a.submit_per_minute;
        opts.max_queued = a.max_queued_jobs;
        opts.max_client_queued = a.max_client_queued_jobs;
        opts.retention = Duration::from_secs(a.job_retention_hours * 3600);
        opts.fits = self.fits_limits(&a.fits)?;
        let upload = Duration::from_secs(a.upload_timeout_seconds);
        opts.conn = self.conn(&a.conn, crate::worker::conn_limits(upload))?;
        Ok(opts)
    }

    /// Everything `calib build` needs, validated.
    pub fn calib_options(
        &self,
        a: &CalibBuildArgs,
    ) -> Result<crate::calib::masters::BuildOptions, ConfigError> {
        use crate::calib::combine::Method;
        if a.bias.is_empty() && a.dark.is_empty() && a.flat.is_empty() {
            return Err(invalid(
                "bias/dark/flat",
                "(none)",
                "give at least one of --bias, --dark, --flat",
            ));
        }
        if !(a.sigma.is_finite() && a.sigma > 0.0) {
            return Err(invalid("sigma", a.sigma, "must be a positive number"));
        }
        let sigma = a.sigma;
        let method = match a.combine {
            Combine::Median => Method::Median,
            Combine::Mean => Method::Mean,
            Combine::ClippedMedian => Method::ClippedMedian { sigma },
            Combine::ClippedMean => Method::ClippedMean { sigma },
        };
        Ok(crate::calib::masters::BuildOptions {
            bias: a.bias.clone(),
            dark: a.dark.clone(),
            flat: a.flat.clone(),
            out: a.out.clone(),
            method,
        })
    }

    /// Everything `serve` needs, validated.
    pub fn serve_options(&self, a: &ServeArgs) -> Result<ServeOptions, ConfigError> {
        let f = &self.serve;
        let q = &a.query_limits;
        let mut opts = ServeOptions::new(self.catalog(&a.catalog), self.addr(a)?);
        opts.refresh = self.refresh(a)?;
        opts.tables = self.tables(&a.tables);
        opts.flight_addr = self.flight_addr(a)?;
        opts.auth_token = self.auth_token(a)?;
        opts.limits = self.limits(a)?;
        if let Some(mb) = q.memory_mb.or(f.memory_mb) {
            if mb < 16 {
                return Err(invalid("memory_mb", mb, "must be at least 16"));
            }
            opts.memory = mb << 20;
        }
        if let Some(mb) = q.spill_mb.or(f.spill_mb) {
            opts.spill = mb << 20;
        }
        if let Some(mb) = q.hot_cache_mb.or(f.hot_cache_mb) {
            opts.hot_cache = mb << 20;
        }
        let at_least_one = |key: &'static str, v: Option<usize>, d: usize| match v {
            Some(0) => Err(invalid(key, 0, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(d),
        };
        opts.client_queries = at_least_one(
            "max_client_queries",
            q.max_client_queries.or(f.max_client_queries),
            opts.client_queries,
        )?;
        opts.prepared_per_client = at_least_one(
            "max_client_prepared",
            q.max_client_prepared.or(f.max_client_prepared),
            opts.prepared_per_client,
        )?;
        opts.tap.jobs_per_client = at_least_one(
            "max_client_tap_jobs",
            q.max_client_tap_jobs.or(f.max_client_tap_jobs),
            opts.tap.jobs_per_client,
        )?;
        opts.tap_jobs = q.tap_jobs.clone().or_else(|| f.tap_jobs.clone());
        if let Some(mb) = q.tap_results_mb.or(f.tap_results_mb) {
            opts.tap.results_bytes = mb << 20;
        }
        if let Some(mb) = q.tap_upload_mb.or(f.tap_upload_mb) {
            opts.tap.upload_bytes = mb << 20;
        }
        let urls = if q.tap_upload_urls.is_empty() {
            &f.tap_upload_urls
        } else {
            &q.tap_upload_urls
        };
        for u in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let parsed = url::Url::parse(u).ok().filter(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host_str().is_some_and(|h| !h.is_empty())
            });
            if parsed.is_none() {
                return Err(invalid(
                    "tap_upload_urls",
                    u.to_string(),
                    "each must be an http:// or https:// URL prefix with a host",
                ));
            }
            opts.tap.upload_url_prefixes.push(u.to_string());
        }
        if let Some(u) = q.public_url.clone().or_else(|| f.public_url.clone()) {
            let u = u.trim_end_matches('/').to_string();
            if url::Url::parse(&u).is_err()
                || !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(invalid(
                    "public_url",
                    u,
                    "must be an http:// or https:// URL",
                ));
            }
            opts.public_url = Some(u);
        }
        let base = crate::server::conn_limits_for(&opts.limits, Vec::new());
        opts.conn = self.conn(&a.conn, base)?;
        Ok(opts)
    }
}

fn invalid(key: &'static str, value: impl std::fmt::Debug, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: format!("{value:?}"),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let f: FileConfig = toml::from_str(
            "catalog = \"s3://b/cat\"\n[ingest]\nthresh = 3.0\nmin_area = 7\n[serve]\naddr = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        assert_eq!(f.catalog(&CatalogArg::default()), "s3://b/cat");
        assert_eq!(
            f.catalog(&CatalogArg {
                catalog: Some("/x".into())
            }),
            "/x"
        );
        let args = ExtractArgs {
            min_area: Some(9),
            ..Default::default()
        };
        let o = f.extract(&args).unwrap();
        assert_eq!(o.detect.thresh_sigma, 3.0);
        assert_eq!(o.detect.min_area, 9);
        assert_eq!(f.addr(&ServeArgs::default()).unwrap().port(), 9000);
        assert!(
            f.extract(&ExtractArgs {
                thresh: Some(-1.0),
                ..Default::default()
            })
            .is_err()
        );
        assert!(toml::from_str::<FileConfig>("catalgo = 1").is_err());
    }
}

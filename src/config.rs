//! One validated configuration: TOML file < `ASTROPIPE_*` environment < flags (clap has
//! already merged environment and flags; the file fills what they left unset), then defaults.

use crate::cli::{CatalogArg, ExtractArgs, ServeArgs};
use crate::image::ExtractOptions;
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
        let timeout = a
            .query_timeout_seconds
            .or(self.serve.query_timeout_seconds)
            .unwrap_or(60);
        let memory = a
            .query_memory_mb
            .or(self.serve.query_memory_mb)
            .unwrap_or(1024);
        let rows = a.row_limit.or(self.serve.row_limit).unwrap_or(1_000_000);
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
        Ok(crate::query::Limits {
            timeout: Some(Duration::from_secs(timeout)),
            memory: Some(memory << 20),
            max_rows: Some(rows),
        })
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

//! Object stores from catalog URIs: a local path or `file://` URL (the default), `s3://bucket/
//! prefix` (credentials and endpoint from the standard AWS environment: AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, web identity on EKS),
//! and `memory://` for tests.

use object_store::ObjectStore;
pub mod log;

use object_store::path::Path;
use std::sync::Arc;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid catalog URI {uri:?}: {reason}")]
    BadUri { uri: String, reason: String },
    #[error("cannot create the catalog directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("object store {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
}

/// Where a catalog lives: a store, the prefix of the catalog inside it, and the URL under
/// which DataFusion reaches the store.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The catalog root inside the store.
    pub root: Path,
    /// Scheme and authority of the store (`file:///`, `s3://bucket/`, `memory:///`).
    pub store_url: Url,
    /// The URI as the user gave it (normalised), for messages.
    pub uri: String,
}

impl Location {
    /// Opens the location named by `uri`, creating a local directory if it does not exist.
    pub fn open(uri: &str) -> Result<Self, StorageError> {
        Self::open_with(uri, true)
    }

    /// Opens an existing location (a local path must exist; nothing is created).
    pub fn open_existing(uri: &str) -> Result<Self, StorageError> {
        Self::open_with(uri, false)
    }

    fn open_with(uri: &str, create: bool) -> Result<Self, StorageError> {
        let bad = |reason: &str| StorageError::BadUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name"));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|source| StorageError::Store {
                    uri: uri.to_string(),
                    source,
                })?;
            return Ok(Location {
                store: Arc::new(store),
                root: Path::from(prefix.trim_matches('/')),
                store_url: Url::parse(&format!("s3://{bucket}/"))
                    .map_err(|e| bad(&e.to_string()))?,
                uri: uri.to_string(),
            });
        }
        if uri.starts_with("memory://") {
            let prefix = uri.trim_start_matches("memory://").trim_matches('/');
            return Ok(Location {
                store: Arc::new(object_store::memory::InMemory::new()),
                root: Path::from(prefix),
                store_url: Url::parse("memory:///").map_err(|e| bad(&e.to_string()))?,
                uri: uri.to_string(),
            });
        }
        let local = if uri.starts_with("file://") {
            Url::parse(uri)
                .map_err(|e| bad(&e.to_string()))?
                .to_file_path()
                .map_err(|_| bad("not a local file URL"))?
        } else if uri.contains("://") {
            return Err(bad(
                "supported schemes: a local path, file://, s3://, memory://",
            ));
        } else {
            std::path::PathBuf::from(uri)
        };
        if !create && !local.exists() {
            return Err(bad("no such file or directory"));
        }
        if create {
            std::fs::create_dir_all(&local).map_err(|source| StorageError::CreateDir {
                path: local.display().to_string(),
                source,
            })?;
        }
        let abs = std::fs::canonicalize(&local).map_err(|source| StorageError::CreateDir {
            path: local.display().to_string(),
            source,
        })?;
        let root = Path::from_absolute_path(&abs).map_err(|e| bad(&e.to_string()))?;
        Ok(Location {
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            root,
            store_url: Url::parse("file:///").map_err(|e| bad(&e.to_string()))?,
            uri: abs.display().to_string(),
        })
    }

    /// The catalog's directory when the store is the local filesystem.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        (self.store_url.scheme() == "file")
            .then(|| std::path::PathBuf::from(format!("/{}", self.root)))
    }

    /// A path under the catalog root.
    pub fn path(&self, rel: &str) -> Path {
        let mut p = self.root.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// The URL of an object, as DataFusion's listing tables expect it.
    pub fn url_of(&self, path: &Path) -> String {
        format!("{}{}", self.store_url, path)
    }
}

//! Expanding ingest inputs: files, directories (recursive) and glob patterns, into a sorted,
//! de-duplicated list of FITS files; and object-store inputs (`s3://bucket/key.fits`, or a
//! prefix `s3://bucket/night/` listed recursively for FITS names), read straight from the
//! store without a local copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// File name endings taken from directories (any case).
const FITS_SUFFIXES: &[&str] = &[
    ".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz",
];

pub fn is_fits_name(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    FITS_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    Local(PathBuf),
    /// An object URI (`s3://bucket/key`).
    Remote(String),
}

impl Input {
    pub fn uri(&self) -> String {
        match self {
            Input::Local(p) => p.display().to_string(),
            Input::Remote(u) => u.clone(),
        }
    }
}

/// Whether an input names an object store rather than the local filesystem.
pub fn is_remote(input: &str) -> bool {
    input.starts_with("s3://")
}

/// Expands local and object-store inputs.
pub async fn expand_all(inputs: &[String]) -> (Vec<Input>, Vec<Unmatched>) {
    let (remote, local): (Vec<String>, Vec<String>) =
        inputs.iter().cloned().partition(|i| is_remote(i));
    let (files, mut unmatched) = expand(&local);
    let mut out: BTreeSet<Input> = files.into_iter().map(Input::Local).collect();
    for uri in remote {
        match list_remote(&uri).await {
            Ok(v) if v.is_empty() => unmatched.push(Unmatched {
                input: uri,
                reason: "no FITS objects under this prefix".into(),
            }),
            Ok(v) => out.extend(v),
            Err(e) => unmatched.push(Unmatched {
                input: uri,
                reason: e.to_string(),
            }),
        }
    }
    (out.into_iter().collect(), unmatched)
}

/// Why an object-store input could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot list: {0}")]
    List(#[from] object_store::Error),
}

/// An object named like a FITS file is one input; anything else is a prefix to list.
async fn list_remote(uri: &str) -> Result<Vec<Input>, ListError> {
    use futures::TryStreamExt;
    if is_fits_name(Path::new(uri)) {
        return Ok(vec![Input::Remote(uri.to_string())]);
    }
    let loc = crate::storage::Location::open(uri)?;
    let metas: Vec<object_store::ObjectMeta> =
        loc.store.list(Some(&loc.root)).try_collect().await?;
    Ok(metas
        .into_iter()
        .filter(|m| is_fits_name(Path::new(m.location.as_ref())))
        .map(|m| Input::Remote(loc.url_of(&m.location)))
        .collect())
}

/// Reads a whole object of at most `max_bytes`.
pub async fn read_remote(uri: &str, max_bytes: u64) -> Result<Vec<u8>, super::pipeline::Failure> {
    use super::pipeline::{Failure, FailureKind};
    use object_store::ObjectStoreExt;
    let io = |e: &dyn std::fmt::Display| Failure::new(FailureKind::Io, format!("cannot read: {e}"));
    let loc = crate::storage::Location::open(uri).map_err(|e| io(&e))?;
    let meta = loc.store.head(&loc.root).await.map_err(|e| io(&e))?;
    if meta.size > max_bytes {
        return Err(Failure::new(
            FailureKind::Refused,
            format!(
                "refused: the object is {} bytes; at most {max_bytes} are accepted (--max-decompressed-mb)",
                meta.size
            ),
        ));
    }
    let got = loc.store.get(&loc.root).await.map_err(|e| io(&e))?;
    let bytes = got.bytes().await.map_err(|e| io(&e))?;
    Ok(bytes.to_vec())
}

/// Keeps every `count`-th input starting at `index` (of the sorted list), so that parallel
/// runs (a Kubernetes Indexed Job's completions) split one input list without overlap.
pub fn shard<T>(items: Vec<T>, index: usize, count: usize) -> Vec<T> {
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| count == 0 || i % count == index)
        .map(|(_, x)| x)
        .collect()
}

/// An input argument that matched nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    pub input: String,
    pub reason: String,
}

/// Expands the arguments. A file named explicitly is taken whatever its name (so a corrupt
/// or misnamed file is reported, not silently ignored); directories contribute their FITS
/// files by name.
pub fn expand(inputs: &[String]) -> (Vec<PathBuf>, Vec<Unmatched>) {
    let mut files = BTreeSet::new();
    let mut unmatched = Vec::new();
    for input in inputs {
        let p = Path::new(input);
        if p.is_file() {
            files.insert(p.to_path_buf());
        } else if p.is_dir() {
            if walk(p, &mut files) == 0 {
                unmatched.push(Unmatched {
                    input: input.clone(),
                    reason: "directory holds no FITS files".into(),
                });
            }
        } else if input.contains(['*', '?', '[']) {
            match glob::glob(input) {
                Ok(paths) => {
                    let mut matched = 0;
                    for entry in paths.flatten() {
                        if entry.is_file() {
                            files.insert(entry);
                            matched += 1;
                        } else if entry.is_dir() {
                            matched += walk(&entry, &mut files);
                        }
                    }
                    if matched == 0 {
                        unmatched.push(Unmatched {
                            input: input.clone(),
                            reason: "pattern matched no files".into(),
                        });
                    }
                }
                Err(e) => unmatched.push(Unmatched {
                    input: input.clone(),
                    reason: format!("bad pattern: {e}"),
                }),
            }
        } else {
            unmatched.push(Unmatched {
                input: input.clone(),
                reason: "no such file or directory".into(),
            });
        }
    }
    (files.into_iter().collect(), unmatched)
}

/// Adds the FITS files under `dir`; returns how many were found.
fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => n += walk(&p, out),
            Ok(_) if is_fits_name(&p) => {
                out.insert(p);
                n += 1;
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_globs_and_missing() {
        let d = std::env::temp_dir().join(format!("astropipe-inputs-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        for f in ["a.fits", "sub/b.FIT.gz", "notes.txt"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let (files, unmatched) = expand(&[
            d.display().to_string(),
            format!("{}/*.fits", d.display()),
            d.join("missing.fits").display().to_string(),
        ]);
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["a.fits", "b.FIT.gz"]);
        assert_eq!(unmatched.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// Where inputs named by a network client may come from (`worker --allow-input`): local
/// directories and `s3://bucket/prefix` roots. Names are checked twice: as text when a job is
/// submitted ([`InputRoots::admit`], touching no file, so a refusal says nothing about what
/// exists), and, for local files, again after directories and globs are expanded, with
/// symbolic links resolved ([`InputRoots::contains_file`]).
#[derive(Debug, Clone, Default)]
pub struct InputRoots {
    /// Local roots as given and as resolved (both spellings admit a name).
    local: Vec<(PathBuf, PathBuf)>,
    /// `s3://bucket/prefix/` (always ending in `/`).
    remote: Vec<String>,
}

/// Why an `--allow-input` root is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{0}: not a valid s3:// root")]
    BadS3(String),
    #[error("{0}: must be an absolute path")]
    Relative(String),
    #[error("{path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a directory")]
    NotADirectory(String),
}

/// Why an input was refused (deliberately the same for every reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "input {0:?} is not allowed: it must be an absolute path or s3:// URI under one of the worker's --allow-input roots, without '..'"
)]
pub struct NotAllowed(pub String);

impl InputRoots {
    /// Parses `--allow-input` values: existing local directories, or `s3://bucket[/prefix]`.
    pub fn parse(specs: &[String]) -> Result<Self, RootError> {
        let mut roots = InputRoots::default();
        for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if let Some(rest) = spec.strip_prefix("s3://") {
                let norm = normalize_s3(rest).ok_or_else(|| RootError::BadS3(spec.to_string()))?;
                let root = if norm.ends_with('/') {
                    format!("s3://{norm}")
                } else {
                    format!("s3://{norm}/")
                };
                roots.remote.push(root);
            } else {
                let p = Path::new(spec.strip_prefix("file://").unwrap_or(spec));
                if !p.is_absolute() {
                    return Err(RootError::Relative(spec.to_string()));
                }
                let real = p.canonicalize().map_err(|source| RootError::Unreadable {
                    path: spec.to_string(),
                    source,
                })?;
                if !real.is_dir() {
                    return Err(RootError::NotADirectory(spec.to_string()));
                }
                roots.local.push((p.to_path_buf(), real));
            }
        }
        Ok(roots)
    }

    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty()
    }

    /// Checks a submitted input as text and returns it normalised (`file://` removed).
    pub fn admit(&self, input: &str) -> Result<String, NotAllowed> {
        let refuse = || NotAllowed(input.chars().take(200).collect());
        if input.is_empty() || input.chars().any(|c| c.is_control() || c == '\\') {
            return Err(refuse());
        }
        if let Some(rest) = input.strip_prefix("s3://") {
            let norm = normalize_s3(rest).ok_or_else(refuse)?;
            let uri = format!("s3://{norm}");
            let inside = self
                .remote
                .iter()
                .any(|r| uri.starts_with(r.as_str()) || format!("{uri}/") == *r);
            return if inside { Ok(uri) } else { Err(refuse()) };
        }
        if input.contains("://") && !input.starts_with("file://") {
            return Err(refuse());
        }
        let path = match input.strip_prefix("file://") {
            // Only file:///absolute (no host part).
            Some(rest) if rest.starts_with('/') => rest,
            Some(_) => return Err(refuse()),
            None => input,
        };
        let p = Path::new(path);
        let plain = path.split('/').all(|seg| seg != "." && seg != "..");
        if !p.is_absolute() || !plain {
            return Err(refuse());
        }
        // The part before the first glob character must lie under a root.
        let literal: PathBuf = p
            .components()
            .take_while(|c| {
                !c.as_os_str()
                    .to_string_lossy()
                    .contains(['*', '?', '[', ']', '{', '}'])
            })
            .collect();
        let inside = self
            .local
            .iter()
            .any(|(given, real)| literal.starts_with(given) || literal.starts_with(real));
        if inside {
            Ok(path.to_string())
        } else {
            Err(refuse())
        }
    }

    /// Whether an existing local file lies under a root once links are resolved.
    pub fn contains_file(&self, p: &Path) -> bool {
        match p.canonicalize() {
            Ok(real) => self.local.iter().any(|(_, root)| real.starts_with(root)),
            Err(_) => false,
        }
    }
}

/// `bucket/key...` with no empty, `.` or `..` segment (a trailing `/` is kept), or None.
fn normalize_s3(rest: &str) -> Option<String> {
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return None;
    }
    if key.is_empty() {
        return Some(bucket.to_string());
    }
    let trailing = key.ends_with('/');
    let segs: Vec<&str> = key.trim_end_matches('/').split('/').collect();
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return None;
    }
    Some(format!(
        "{bucket}/{}{}",
        segs.join("/"),
        if trailing { "/" } else { "" }
    ))
}

#[cfg(test)]
mod roots_tests {
    use super::*;

    #[test]
    fn inputs_are_admitted_only_under_the_roots() {
        let d = std::env::temp_dir().join(format!("astropipe-roots-{}", std::process::id()));
        std::fs::create_dir_all(d.join("raw/night1")).unwrap();
        let root = d.join("raw");
        let roots =
            InputRoots::parse(&[root.display().to_string(), "s3://raw-bucket/nights".into()])
                .unwrap();
        let r = root.display().to_string();
        for ok in [
            format!("{r}/night1/a.fits"),
            format!("{r}/night1/*.fits"),
            format!("file://{r}/x.fits"),
            "s3://raw-bucket/nights/1/a.fits".into(),
            "s3://raw-bucket/nights/".into(),
        ] {
            assert!(roots.admit(&ok).is_ok(), "{ok}");
        }
        for bad in [
            "/srv/private/*".to_string(),
            format!("{r}/../secret.fits"),
            format!("{r}/./x.fits"),
            format!("{r}x/a.fits"),
            "night1/a.fits".into(),
            "file://host/etc/passwd".into(),
            "http://example.org/a.fits".into(),
            "s3://someone-elses-bucket/".into(),
            "s3://raw-bucket/nights2/a.fits".into(),
            "s3://raw-bucket/nights/../x".into(),
            "/srv/*/raw/a.fits".into(),
            format!("{r}/a\u{0}.fits"),
        ] {
            assert!(roots.admit(&bad).is_err(), "{bad}");
        }
        // The same refusal whether the path exists or not.
        assert_eq!(
            roots
                .admit("/etc/passwd")
                .unwrap_err()
                .to_string()
                .replace("/etc/passwd", "X"),
            roots
                .admit("/no/such")
                .unwrap_err()
                .to_string()
                .replace("/no/such", "X")
        );
        // A link inside the root pointing outside is caught after expansion.
        std::fs::write(d.join("outside.fits"), b"x").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.join("outside.fits"), root.join("night1/link.fits"))
                .unwrap();
            assert!(!roots.contains_file(&root.join("night1/link.fits")));
        }
        std::fs::write(root.join("night1/in.fits"), b"x").unwrap();
        assert!(roots.contains_file(&root.join("night1/in.fits")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}

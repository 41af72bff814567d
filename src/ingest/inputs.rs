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
            Err(reason) => unmatched.push(Unmatched { input: uri, reason }),
        }
    }
    (out.into_iter().collect(), unmatched)
}

/// An object named like a FITS file is one input; anything else is a prefix to list.
async fn list_remote(uri: &str) -> Result<Vec<Input>, String> {
    use futures::TryStreamExt;
    if is_fits_name(Path::new(uri)) {
        return Ok(vec![Input::Remote(uri.to_string())]);
    }
    let loc = crate::storage::Location::open(uri).map_err(|e| e.to_string())?;
    let metas: Vec<object_store::ObjectMeta> = loc
        .store
        .list(Some(&loc.root))
        .try_collect()
        .await
        .map_err(|e| format!("cannot list: {e}"))?;
    Ok(metas
        .into_iter()
        .filter(|m| is_fits_name(Path::new(m.location.as_ref())))
        .map(|m| Input::Remote(loc.url_of(&m.location)))
        .collect())
}

/// Reads a whole object.
pub async fn read_remote(uri: &str) -> Result<Vec<u8>, String> {
    use object_store::ObjectStoreExt;
    let loc = crate::storage::Location::open(uri).map_err(|e| e.to_string())?;
    let got = loc
        .store
        .get(&loc.root)
        .await
        .map_err(|e| format!("cannot read: {e}"))?;
    let bytes = got.bytes().await.map_err(|e| format!("cannot read: {e}"))?;
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

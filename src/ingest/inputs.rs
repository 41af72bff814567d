//! Expanding ingest inputs: files, directories (recursive) and glob patterns, into a sorted,
//! de-duplicated list of FITS files.

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

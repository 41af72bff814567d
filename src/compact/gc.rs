//! Garbage collection: objects no committed version needs, once older than the grace period,
//! and the staging files a killed writer left in a local store.

use super::CompactError;
use crate::catalog::commit;
use crate::catalog::{EXPOSURES, SOURCES};
use crate::storage::Location;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use std::time::Duration;

/// Deletes objects under the catalog that the latest version does not reference: files removed
/// by a commit more than `grace` ago, and files never committed (a crashed or lost writer) last
/// modified more than `grace` ago. The commit log, the collection pointer and the current HATS
/// generation are kept.
pub async fn collect_garbage(loc: &Location, grace: Duration) -> Result<usize, CompactError> {
    let snap = commit::snapshot(loc).await?;
    let live: std::collections::HashSet<String> = snap
        .live_paths()
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let grace = grace.as_secs() as i64;
    // The generation HATS readers are pointed at stays whole until the next compaction, even
    // where a reprocess has replaced some of its files in the commit log.
    let protected: Vec<String> = snap
        .generation
        .iter()
        .flat_map(|g| {
            let mut v = vec![
                format!("{SOURCES}/{}/", g.sources_dir),
                format!("{EXPOSURES}/{}/", g.sources_dir),
            ];
            if let Some(m) = &g.margin_dir {
                v.push(format!("{SOURCES}/{m}/"));
            }
            v
        })
        .collect();
    let root = loc.root.to_string();
    let objects: Vec<_> = loc
        .store
        .list(Some(&loc.root))
        .try_collect()
        .await
        .map_err(|e| CompactError::Write {
            path: root.clone(),
            message: e.to_string(),
        })?;
    let mut deleted = 0;
    for m in objects {
        let full = m.location.to_string();
        let rel = full
            .strip_prefix(&root)
            .unwrap_or(&full)
            .trim_start_matches('/')
            .to_string();
        if rel.starts_with(commit::COMMITS_DIR)
            || rel.ends_with("collection.properties")
            || live.contains(&rel)
            || protected.iter().any(|p| rel.starts_with(p.as_str()))
        {
            continue;
        }
        let old_enough = match snap
            .removed_at
            .get(&rel)
            .and_then(|t| commit::parse_rfc3339(t))
        {
            Some(removed) => now - removed >= grace,
            None => now - m.last_modified.timestamp() >= grace,
        };
        // Only files the catalog writes: table directories.
        let ours = [SOURCES, EXPOSURES]
            .iter()
            .any(|t| rel.starts_with(&format!("{t}/")));
        if old_enough && ours {
            loc.store
                .delete(&m.location)
                .await
                .map_err(|e| CompactError::Write {
                    path: rel.clone(),
                    message: e.to_string(),
                })?;
            deleted += 1;
        }
    }
    if let Some(dir) = loc.local_dir() {
        deleted += sweep_local_staging(&dir, grace);
    }
    Ok(deleted)
}

/// The local store writes uploads to `<name>#<n>` files and renames them when complete; its
/// listing hides them, so the ones a killed writer left are found on the filesystem.
fn sweep_local_staging(root: &std::path::Path, grace_secs: i64) -> usize {
    fn walk(dir: &std::path::Path, grace_secs: i64, n: &mut usize) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                walk(&p, grace_secs, n);
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            let staging = name
                .rsplit_once('#')
                .is_some_and(|(_, s)| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
            let age = md
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if staging && age >= grace_secs && std::fs::remove_file(&p).is_ok() {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    for t in [SOURCES, EXPOSURES] {
        walk(&root.join(t), grace_secs, &mut n);
    }
    n
}

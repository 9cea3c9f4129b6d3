//! The dataset files this process has read, each with the sha256 of the bytes read: the
//! manifest records them, and `--resume` and `merge` refuse a run whose datasets changed.
//! Recorded by the readers themselves, so the digest is of exactly the bytes the cases came
//! from (no second read, no race with a file being replaced).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use audit_core::FileDigest;

static READ: Mutex<BTreeMap<String, FileDigest>> = Mutex::new(BTreeMap::new());

/// Records that `bytes` were read from `path`.
pub fn record(path: &Path, bytes: &[u8]) {
    let shown = path.display().to_string();
    let digest = FileDigest::of_bytes(&shown, bytes);
    if let Ok(mut read) = READ.lock() {
        read.insert(shown, digest);
    }
}

/// Every dataset file read so far, by path.
pub fn files_read() -> Vec<FileDigest> {
    READ.lock()
        .map(|read| read.values().cloned().collect())
        .unwrap_or_default()
}

/// `std::fs::read`, recorded.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    record(path, &bytes);
    Ok(bytes)
}

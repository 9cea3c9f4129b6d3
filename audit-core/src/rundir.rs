//! The run directory, the one serialized boundary: file names, and manifest.json (provenance).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{FileDigest, Generation, ModelInfo};
use crate::run::Shard;
use crate::suite::SuiteRef;
use crate::summary::Statistics;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The journal's file name.
pub const ATTEMPTS_JSONL: &str = "attempts.jsonl";
/// The Parquet table of the attempts.
pub const ATTEMPTS_PARQUET: &str = "attempts.parquet";
/// The summary's file name.
pub const SUMMARY: &str = "summary.json";
/// The HTML report's file name.
pub const REPORT_HTML: &str = "report.html";
/// The Markdown summary's file name.
pub const SUMMARY_MD: &str = "summary.md";
/// The JUnit XML file's name.
pub const JUNIT: &str = "junit.xml";
/// The SARIF file's name.
pub const SARIF: &str = "results.sarif";

/// The paths of one run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// The path of one of its files (see the file-name constants).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// The tool that made a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `probity`.
    pub name: String,
    /// Its version (Cargo's).
    pub version: String,
    /// The git commit it was built from, where known.
    pub git_sha: String,
}

/// Where a run stands: `running` until its summary is written; `interrupted` when a signal
/// stopped it between batches (resume it); `partial` when it is a merge of some shards only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished (or killed: `--resume` continues it).
    Running,
    /// Stopped by a signal between batches; `--resume` continues it.
    Interrupted,
    /// A merge of some of a run's shards only.
    Partial,
    /// Every case answered and the summary written.
    Complete,
}

impl RunStatus {
    /// The status as written in manifest.json.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Partial => "partial",
            RunStatus::Complete => "complete",
        }
    }
}

/// manifest.json: what was run, on which exact model files, how, where and when. The only file
/// of a run directory that holds timestamps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The run directory schema's version ([`crate::summary::SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The tool that made the run.
    pub tool: Tool,
    /// The command as typed, secrets redacted.
    pub command_line: Vec<String>,
    /// The suites run, with their sources and sha256.
    pub suites: Vec<SuiteRef>,
    /// Who answered, with the digests of its files (and the judges').
    pub model: ModelInfo,
    /// Every dataset file the cases were made from, with its sha256, as it was read.
    #[serde(default)]
    pub datasets: Vec<FileDigest>,
    /// The run's seed.
    pub seed: u64,
    /// How Chat answers were generated.
    pub generation: Generation,
    /// `--limit`: at most this many cases per probe.
    pub limit: Option<usize>,
    /// When the run is one shard of a larger one (`K/N` in the file).
    pub shard: Option<Shard>,
    /// The date chat templates printed (`--date`, YYYY-MM-DD); empty in manifests written
    /// before it was an input (templates then printed the day of the run).
    #[serde(default)]
    pub date: String,
    /// The statistics settings (`confidence` and `min_effect` in the file).
    #[serde(flatten)]
    pub statistics: Statistics,
    /// The machine it ran on.
    pub host: Host,
    /// When the run (or its first part, when resumed) started, RFC 3339.
    pub started_at: String,
    /// When the summary was written; None until then.
    pub finished_at: Option<String>,
    /// Where the run stands.
    pub status: RunStatus,
    /// How many cases the run plans (after limit, shard and transforms).
    pub n_cases: u64,
}

/// Which two runs [`Manifest::differences`] compares: a run and its `--resume` (the same
/// shard), or two shards of one run (any shard; the same statistics settings, since their
/// merge has one summary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sameness {
    /// A run and its `--resume`.
    Resume,
    /// Two shards of one run, before `merge`.
    Shards,
}

impl Manifest {
    /// What differs between two manifests among the inputs that shape the attempts: suites
    /// (and their hashes), the model (backend, name, device, dtype, files and their hashes,
    /// details such as a served model's URL or a judge's model), dataset file hashes, seed,
    /// generation settings, `--limit`, `--date`, and `--shard` for a resume or the statistics settings
    /// for shards. Empty when they are the same run: the one "same run?" rule of `--resume`
    /// and `merge`.
    pub fn differences(&self, other: &Manifest, sameness: Sameness) -> Vec<&'static str> {
        let datasets = |m: &Manifest| {
            let mut hashes: Vec<(String, u64)> = m
                .datasets
                .iter()
                .map(|d| (d.sha256.clone(), d.bytes))
                .collect();
            hashes.sort();
            hashes
        };
        let (a, b) = (self, other);
        let shards = sameness == Sameness::Shards;
        [
            ("suites", a.suites != b.suites),
            ("model backend", a.model.backend != b.model.backend),
            ("model", a.model.model != b.model.model),
            ("device", a.model.device != b.model.device),
            ("dtype", a.model.dtype != b.model.dtype),
            ("model files", a.model.files != b.model.files),
            ("model details", a.model.details != b.model.details),
            ("dataset files", datasets(a) != datasets(b)),
            ("seed", a.seed != b.seed),
            ("generation settings", a.generation != b.generation),
            ("--limit", a.limit != b.limit),
            ("--date", a.date != b.date),
            ("--shard", !shards && a.shard != b.shard),
            (
                "--confidence",
                shards && a.statistics.confidence != b.statistics.confidence,
            ),
            (
                "--min-effect",
                shards && a.statistics.min_effect != b.statistics.min_effect,
            ),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(what, _)| what)
        .collect()
    }
}

/// The machine a run ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The host's name.
    pub hostname: String,
    /// The operating system (`linux`, `macos`, …).
    pub os: String,
    /// The CPU architecture (`x86_64`, `aarch64`, …).
    pub arch: String,
    /// Logical CPUs available to the run.
    pub cpus: usize,
}

/// A run directory that cannot be locked, read or written; one line naming the path.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{path}: {source}")]
    /// A file of the directory cannot be read or written.
    Io {
        /// The file's path.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Another process holds the directory's lock.
    #[error("{path} is in use by another probity process (a run, resume, merge, gate or report writing it): wait for it to finish")]
    Locked {
        /// The directory.
        path: String,
    },
    /// A file of the directory does not read as its schema says.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory does not exist.
    #[error("{path}: no such run directory")]
    Missing {
        /// The directory.
        path: String,
    },
}

fn io_error(path: &Path, source: std::io::Error) -> RunDirError {
    RunDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// An exclusive lock on a run directory (an advisory `flock` on the directory itself), held
/// until dropped: one writer at a time, whatever the command. Released by the operating system
/// when the process dies, so a killed run leaves no stale lock.
#[derive(Debug)]
pub struct DirLock {
    _directory: File,
}

impl RunDir {
    /// Creates the directory if needed and locks it, or says that another process holds it.
    pub fn create_and_lock(&self) -> Result<DirLock, RunDirError> {
        std::fs::create_dir_all(&self.root).map_err(|e| io_error(&self.root, e))?;
        self.lock()
    }

    /// Locks the existing directory, or says that another process holds it.
    pub fn lock(&self) -> Result<DirLock, RunDirError> {
        if !self.root.is_dir() {
            return Err(RunDirError::Missing {
                path: self.root.display().to_string(),
            });
        }
        let directory = File::open(&self.root).map_err(|e| io_error(&self.root, e))?;
        match fs4::FileExt::try_lock(&directory) {
            Ok(()) => Ok(DirLock {
                _directory: directory,
            }),
            Err(fs4::TryLockError::WouldBlock) => Err(RunDirError::Locked {
                path: self.root.display().to_string(),
            }),
            Err(fs4::TryLockError::Error(e)) => Err(io_error(&self.root, e)),
        }
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old file or the new one,
/// never a mix: the bytes go to a new temporary file beside it (created exclusively, so never
/// through a symlink), are fsynced, and the file is renamed over `path` (which replaces a
/// symlink rather than following it); then the directory is fsynced so the rename survives a
/// power loss.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(|e| io_error(path, e))
}

/// fsyncs a directory, so that the names created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes a value as pretty JSON (and a final newline) with `write_atomic`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RunDirError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| RunDirError::Invalid {
        path: path.display().to_string(),
        reason: format!("cannot serialize: {e}"),
    })?;
    text.push(b'\n');
    write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        assert!(run.lock().is_err(), "no directory yet");
        let first = run.create_and_lock().unwrap();
        assert!(matches!(run.lock(), Err(RunDirError::Locked { .. })));
        drop(first);
        run.lock().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_replace_symlinks_instead_of_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.txt");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("manifest.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
    }
}

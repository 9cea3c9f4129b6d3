//! The life of a run directory, in one place for every command that writes one (`run`,
//! `merge`): reserve it (lock, refuse a directory that holds another run), begin (the manifest
//! first, then the journal, new or resumed), then end it (interrupted, or the summary and the
//! final status).

use std::path::{Path, PathBuf};

use crate::journal::{self, Journal, JournalError};
use crate::rundir::{self, DirLock, Manifest, RunDir, RunDirError, RunStatus, Sameness};
use crate::summary::Summary;

/// How a command takes a run directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new run (`run`): the directory must hold none.
    New,
    /// `run --resume`: the directory must hold the same run.
    Resume,
    /// A merge of shards (`merge`): the directory must hold none.
    Merge,
}

/// Why a run directory cannot be taken or written; one line naming the path.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A new run into a directory that holds one.
    #[error("{path} already holds a run: {hint}")]
    Taken {
        /// The directory.
        path: String,
        /// What to do instead (`--resume`, another `--out`).
        hint: &'static str,
    },
    /// `--resume` of a directory without a run.
    #[error("--resume: {dir} has no run to continue ({manifest} is missing)")]
    NothingToResume {
        /// The directory.
        dir: String,
        /// The manifest that is missing.
        manifest: String,
    },
    #[error("--resume: {manifest}: its {differences} differ from this command's; start a new run with another --out")]
    /// `--resume` of a run whose inputs differ from this command's.
    NotTheSameRun {
        /// The existing run's manifest.
        manifest: String,
        /// The inputs that differ, named.
        differences: String,
    },
    /// The existing manifest cannot be read.
    #[error("reading {path}: {reason}")]
    Manifest {
        /// The manifest's path.
        path: String,
        /// Why it cannot be read.
        reason: String,
    },
    #[error(transparent)]
    /// The run directory cannot be locked, read or written.
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    /// The journal cannot be read or written.
    Journal(#[from] JournalError),
}

/// Whether `dir` holds a run (a journal or a manifest; a dangling symlink counts, since nothing
/// is ever written through one).
pub fn holds_run(dir: &Path) -> bool {
    let run = RunDir::new(dir);
    let present = |p: PathBuf| std::fs::symlink_metadata(p).is_ok();
    present(run.file(rundir::ATTEMPTS_JSONL)) || present(run.file(rundir::MANIFEST))
}

/// A run directory locked for this process and checked for `mode`, before any model is loaded.
#[derive(Debug)]
pub struct Reserved {
    dir: RunDir,
    mode: Mode,
    lock: DirLock,
}

/// Locks `dir` (creating it) for one writer, held until the session is dropped, and checks it:
/// empty for a new run or a merge, holding a manifest for a resume.
pub fn reserve(dir: &Path, mode: Mode) -> Result<Reserved, SessionError> {
    let run = RunDir::new(dir);
    let manifest = run.file(rundir::MANIFEST);
    if mode == Mode::Resume && !manifest.exists() {
        return Err(SessionError::NothingToResume {
            dir: dir.display().to_string(),
            manifest: manifest.display().to_string(),
        });
    }
    let lock = run.create_and_lock()?;
    if mode != Mode::Resume && holds_run(dir) {
        return Err(SessionError::Taken {
            path: dir.display().to_string(),
            hint: match mode {
                Mode::Merge => "choose another --out",
                _ => "use --resume to continue it, or choose another --out",
            },
        });
    }
    Ok(Reserved {
        dir: run,
        mode,
        lock,
    })
}

impl Reserved {
    /// Writes the manifest (status `running`) before the journal exists, so that a run killed
    /// at any point either holds nothing or has a manifest to resume from; then opens the
    /// journal. A resume first checks that the directory holds the same run
    /// ([`Manifest::differences`]) and keeps its start time.
    pub fn begin(self, mut manifest: Manifest) -> Result<Session, SessionError> {
        let manifest_path = self.dir.file(rundir::MANIFEST);
        let journal_path = self.dir.file(rundir::ATTEMPTS_JSONL);
        manifest.status = RunStatus::Running;
        let journal = if self.mode == Mode::Resume {
            let previous = read_manifest(&manifest_path)?;
            let differences = previous.differences(&manifest, Sameness::Resume);
            if !differences.is_empty() {
                return Err(SessionError::NotTheSameRun {
                    manifest: manifest_path.display().to_string(),
                    differences: differences.join(", "),
                });
            }
            manifest.started_at = previous.started_at;
            rundir::write_json(&manifest_path, &manifest)?;
            if std::fs::symlink_metadata(&journal_path).is_ok() {
                Journal::resume(&journal_path)?.0
            } else {
                Journal::create(&journal_path)?
            }
        } else {
            rundir::write_json(&manifest_path, &manifest)?;
            Journal::create(&journal_path)?
        };
        Ok(Session {
            dir: self.dir,
            manifest,
            journal,
            _lock: self.lock,
        })
    }

    /// The run directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A run directory being written: its manifest and its open journal, under its lock.
#[derive(Debug)]
pub struct Session {
    dir: RunDir,
    manifest: Manifest,
    journal: Journal,
    _lock: DirLock,
}

impl Session {
    /// The run directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The manifest as written when the session began.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The journal, open for appending.
    pub fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Every attempt journaled so far, read back from the file.
    pub fn attempts(&self) -> Result<Vec<crate::Attempt>, SessionError> {
        Ok(journal::read(&self.dir.file(rundir::ATTEMPTS_JSONL))?)
    }

    /// Marks the run `interrupted` (resume it later); returns the number of attempts journaled.
    pub fn interrupt(mut self) -> Result<usize, SessionError> {
        self.manifest.status = RunStatus::Interrupted;
        rundir::write_json(&self.dir.file(rundir::MANIFEST), &self.manifest)?;
        Ok(self.attempts()?.len())
    }

    /// Writes the summary, then the manifest with its final `status` (`complete`, or `partial`
    /// for a merge of some shards) and `finished_at`; the lock is released when this returns.
    pub fn finish(
        mut self,
        summary: &Summary,
        status: RunStatus,
        finished_at: String,
    ) -> Result<(), SessionError> {
        rundir::write_json(&self.dir.file(rundir::SUMMARY), summary)?;
        self.manifest.finished_at = Some(finished_at);
        self.manifest.status = status;
        rundir::write_json(&self.dir.file(rundir::MANIFEST), &self.manifest)?;
        Ok(())
    }
}

/// A manifest.json read back, or one line naming it.
pub fn read_manifest(path: &Path) -> Result<Manifest, SessionError> {
    let error = |reason: String| SessionError::Manifest {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| error(format!("not a valid manifest: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backend::{Generation, ModelInfo};
    use crate::rundir::{Host, Tool};
    use crate::summary::{summarise, Statistics};

    fn manifest(seed: u64) -> Manifest {
        Manifest {
            schema_version: crate::summary::SCHEMA_VERSION,
            tool: Tool {
                name: "probity".into(),
                version: "0".into(),
                git_sha: "x".into(),
            },
            command_line: vec!["probity".into()],
            suites: Vec::new(),
            model: ModelInfo {
                backend: "scripted".into(),
                model: "m".into(),
                device: "cpu".into(),
                dtype: "f32".into(),
                files: Vec::new(),
                details: Default::default(),
            },
            datasets: Vec::new(),
            seed,
            generation: Generation::default(),
            limit: None,
            shard: Some("2/3".parse().unwrap()),
            date: "2024-07-26".into(),
            statistics: Statistics {
                confidence: 0.9,
                min_effect: 0.2,
            },
            host: Host {
                hostname: "h".into(),
                os: "linux".into(),
                arch: "x86_64".into(),
                cpus: 2,
            },
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            status: RunStatus::Running,
            n_cases: 0,
        }
    }

    #[test]
    fn a_run_begins_finishes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let session = reserve(&out, Mode::New)
            .unwrap()
            .begin(manifest(1))
            .unwrap();
        let written = read_manifest(&out.join(rundir::MANIFEST)).unwrap();
        assert_eq!(written.status, RunStatus::Running);
        assert!(out.join(rundir::ATTEMPTS_JSONL).exists());
        let summary = summarise(&[], &[], 1, 0.9);
        session
            .finish(&summary, RunStatus::Complete, "2026-01-01T00:01:00Z".into())
            .unwrap();
        let written = read_manifest(&out.join(rundir::MANIFEST)).unwrap();
        assert_eq!(written.status, RunStatus::Complete);
        assert_eq!(written.finished_at.as_deref(), Some("2026-01-01T00:01:00Z"));
        // The typed fields keep their file form: `K/N`, and the statistics beside the seed.
        let raw: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(rundir::MANIFEST)).unwrap())
                .unwrap();
        assert_eq!(raw["shard"], "2/3");
        assert_eq!(raw["confidence"], 0.9);
        assert_eq!(raw["min_effect"], 0.2);
        assert!(out.join(rundir::SUMMARY).exists());
    }

    #[test]
    fn a_taken_directory_is_refused_and_a_resume_needs_the_same_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let error = reserve(&out, Mode::Resume).unwrap_err().to_string();
        assert!(error.contains("has no run to continue"), "{error}");
        let first = reserve(&out, Mode::New)
            .unwrap()
            .begin(manifest(1))
            .unwrap();
        // One writer at a time.
        let error = reserve(&out, Mode::Resume).unwrap_err().to_string();
        assert!(
            error.contains("in use by another probity process"),
            "{error}"
        );
        let journaled = first.interrupt().unwrap();
        assert_eq!(journaled, 0);
        assert_eq!(
            read_manifest(&out.join(rundir::MANIFEST)).unwrap().status,
            RunStatus::Interrupted
        );
        for mode in [Mode::New, Mode::Merge] {
            let error = reserve(&out, mode).unwrap_err().to_string();
            assert!(error.contains("already holds a run"), "{error}");
        }
        let error = reserve(&out, Mode::Resume)
            .unwrap()
            .begin(manifest(2))
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(
                "its seed differ from this command's; start a new run with another --out"
            ),
            "{error}"
        );
        let mut later = manifest(1);
        later.started_at = "2026-02-02T00:00:00Z".into();
        let resumed = reserve(&out, Mode::Resume).unwrap().begin(later).unwrap();
        // A resume keeps the first start time.
        assert_eq!(resumed.manifest().started_at, "2026-01-01T00:00:00Z");
    }

    #[test]
    fn shards_differ_in_their_shard_only() {
        let a = manifest(1);
        let mut b = manifest(1);
        b.shard = Some("3/3".parse().unwrap());
        assert!(a.differences(&b, Sameness::Shards).is_empty());
        assert_eq!(a.differences(&b, Sameness::Resume), vec!["--shard"]);
        b.statistics.min_effect = 0.3;
        assert_eq!(a.differences(&b, Sameness::Shards), vec!["--min-effect"]);
        // Statistics may change on a resume: the summary is computed at the end.
        assert_eq!(a.differences(&b, Sameness::Resume), vec!["--shard"]);
    }

    #[test]
    fn shards_read_and_write_as_k_of_n() {
        let shard: crate::run::Shard = "2/5".parse().unwrap();
        assert_eq!((shard.index, shard.count), (2, 5));
        assert_eq!(shard.to_string(), "2/5");
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", ""] {
            assert!(bad.parse::<crate::run::Shard>().is_err(), "{bad}");
        }
        let error = serde_json::from_str::<crate::run::Shard>("\"5/4\"").unwrap_err();
        assert!(error.to_string().contains("expected K/N"), "{error}");
    }
}

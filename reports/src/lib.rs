//! Reports of a finished run directory, rendered from its files alone (never re-running
//! anything): report.html (self-contained), summary.md, junit.xml, results.sarif and the
//! attempts.parquet table; policy gates over a summary; and the paired comparison of two runs.

pub mod aggregate;
mod attacks;
mod chart;
pub mod compare;
pub mod history;
mod html;
mod junit;
mod markdown;
mod parquet;
pub mod policy;
mod sarif;

use std::path::Path;

use audit_core::journal;
use audit_core::rundir::{self, Manifest, RunDir};
use audit_core::summary::SCHEMA_VERSION;
use audit_core::{Attempt, Summary};

pub use html::render_html;
pub use junit::render_junit;
pub use markdown::render_markdown;
pub use parquet::write_parquet;
pub use policy::{evaluate, load_policy, parse_policy, Policy, PolicyError};
pub use sarif::render_sarif;

/// A run directory that cannot be reported on.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("rendering {what}: {message}")]
    Render { what: String, message: String },
}

/// Everything a report is made of, read from a run directory.
#[derive(Clone, Debug)]
pub struct RunFiles {
    pub manifest: Manifest,
    pub summary: Summary,
    pub attempts: Vec<Attempt>,
}

/// Reads the manifest, summary and attempts of a run directory, checking the schema version.
pub fn read_run(dir: &Path) -> Result<RunFiles, ReportError> {
    let run = RunDir::new(dir);
    if !dir.is_dir() {
        return Err(ReportError::File {
            path: dir.display().to_string(),
            message: "no such run directory".to_string(),
        });
    }
    let manifest: Manifest = read_json(&run.file(rundir::MANIFEST))?;
    let summary: Summary = read_json(&run.file(rundir::SUMMARY))?;
    for (name, version) in [
        (rundir::MANIFEST, manifest.schema_version),
        (rundir::SUMMARY, summary.schema_version),
    ] {
        if version != SCHEMA_VERSION {
            return Err(ReportError::File {
                path: run.file(name).display().to_string(),
                message: format!(
                    "schema version {version}, but this probity reads version {SCHEMA_VERSION}"
                ),
            });
        }
    }
    let attempts =
        journal::read(&run.file(rundir::ATTEMPTS_JSONL)).map_err(|e| ReportError::File {
            path: run.file(rundir::ATTEMPTS_JSONL).display().to_string(),
            message: e.to_string(),
        })?;
    Ok(RunFiles {
        manifest,
        summary,
        attempts,
    })
}

/// Writes report.html, summary.md, junit.xml, results.sarif and attempts.parquet into a run
/// directory.
pub fn write_reports(dir: &Path) -> Result<(), ReportError> {
    let files = read_run(dir)?;
    let run = RunDir::new(dir);
    write(&run.file(rundir::REPORT_HTML), &render_html(&files)?)?;
    write(&run.file(rundir::SUMMARY_MD), &render_markdown(&files))?;
    write(&run.file(rundir::JUNIT), &render_junit(&files))?;
    write(&run.file(rundir::SARIF), &render_sarif(&files))?;
    write_parquet(&files.attempts, &run.file(rundir::ATTEMPTS_PARQUET))?;
    Ok(())
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let error = |message: String| ReportError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| error(format!("not valid: {e}")))
}

/// Writes a report file atomically (temporary file, fsync, rename: never half a file, never
/// through a symlink).
pub(crate) fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    write_bytes(path, text.as_bytes())
}

pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    rundir::write_atomic(path, bytes).map_err(|e| ReportError::File {
        path: path.display().to_string(),
        message: match e {
            rundir::RunDirError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        },
    })
}

/// A number for people: fixed decimals, `—` for NaN.
pub(crate) fn number(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "—".to_string()
    } else {
        format!("{value:.decimals$}")
    }
}

/// A p-value for people: 4 decimals, or `< 0.0001`.
pub(crate) fn p_value(value: f64) -> String {
    if value.is_nan() {
        "—".to_string()
    } else if value < 0.0001 {
        "< 0.0001".to_string()
    } else {
        format!("{value:.4}")
    }
}

/// `key=value, …` for a group of attributes; `all` when empty.
pub(crate) fn group_label(group: &audit_core::Attributes) -> String {
    if group.is_empty() {
        "all".to_string()
    } else {
        group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

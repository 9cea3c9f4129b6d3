//! The run directory, the one serialized boundary: file names, and manifest.json (provenance).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{Generation, ModelInfo};
use crate::suite::SuiteRef;

pub const MANIFEST: &str = "manifest.json";
pub const ATTEMPTS_JSONL: &str = "attempts.jsonl";
pub const ATTEMPTS_PARQUET: &str = "attempts.parquet";
pub const SUMMARY: &str = "summary.json";
pub const REPORT_HTML: &str = "report.html";
pub const SUMMARY_MD: &str = "summary.md";
pub const JUNIT: &str = "junit.xml";
pub const SARIF: &str = "results.sarif";

/// The paths of one run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }
}

/// The tool that made a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub git_sha: String,
}

/// Where a run stands: `running` until its summary is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Complete,
}

/// manifest.json: what was run, on which exact model files, how, where and when. The only file
/// of a run directory that holds timestamps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub tool: Tool,
    pub command_line: Vec<String>,
    pub suites: Vec<SuiteRef>,
    pub model: ModelInfo,
    pub seed: u64,
    pub generation: Generation,
    pub limit: Option<usize>,
    /// `K/N` when the run is one shard of a larger one.
    pub shard: Option<String>,
    pub confidence: f64,
    pub host: Host,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub n_cases: u64,
}

/// The machine a run ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
}

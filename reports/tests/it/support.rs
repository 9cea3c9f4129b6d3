//! What the report tests share: the fixed manifest of an in-process scripted run, so that every
//! rendered output is byte-stable.

use audit_core::rundir::{Host, Manifest, RunStatus, Tool};
use audit_core::summary::{Statistics, SCHEMA_VERSION};
use audit_core::{Generation, ModelInfo, SuiteRef};

/// The manifest of a finished run at fixed times on a fixed host, with fixed tool version.
pub fn fixed_manifest(
    command_line: Vec<String>,
    suites: Vec<SuiteRef>,
    model: ModelInfo,
    generation: Generation,
    n_cases: u64,
) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "probity".to_string(),
            version: "0.1.0".to_string(),
            git_sha: "0000000000000000000000000000000000000000".to_string(),
        },
        command_line,
        suites,
        model,
        datasets: Vec::new(),
        seed: 0,
        generation,
        limit: None,
        shard: None,
        date: "2024-07-26".into(),
        statistics: Statistics::at(0.95),
        host: Host {
            hostname: "ci".to_string(),
            os: "linux".to_string(),
            arch: "x86_64".to_string(),
            cpus: 2,
        },
        started_at: "2026-01-01T00:00:00Z".to_string(),
        finished_at: Some("2026-01-01T00:01:00Z".to_string()),
        status: RunStatus::Complete,
        n_cases,
    }
}

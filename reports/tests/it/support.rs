//! What the report tests share: an in-process scripted run with a fixed manifest, so that every
//! rendered output is byte-stable.

use std::path::Path;

use audit_core::journal::{self, Journal};
use audit_core::run::{self, RunConfig};
use audit_core::rundir::{Host, Manifest, RunStatus, Tool};
use audit_core::summary::{summarise, Statistics, SCHEMA_VERSION};
use audit_core::{Backend, Generation, ModelInfo, Suite, SuiteRef};
use reports::RunFiles;

/// Runs `suites` on the scripted profile at `profile` in process (seed 0, 95% intervals) and
/// returns the run's files; the profile's path is recorded as `shown` and the command line as
/// given, so that the manifest does not depend on where the test ran.
pub fn scripted_run(
    suites: &[Suite],
    profile: &Path,
    shown: &str,
    generation: Generation,
    command_line: Vec<String>,
) -> RunFiles {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = runners::scripted::ScriptedBackend::load(profile).unwrap();
    let config = RunConfig {
        seed: 0,
        generation,
        limit: None,
        shard: None,
    };
    let planned = run::plan(suites, &config).unwrap();
    let path = dir.path().join("attempts.jsonl");
    let mut journal = Journal::create(&path).unwrap();
    run::execute(
        suites,
        &planned,
        &mut backend,
        &config,
        &mut journal,
        &mut |_, _| {},
    )
    .unwrap();
    let attempts = journal::read(&path).unwrap();
    let summary = summarise(suites, &attempts, 0, 0.95);
    let mut model = backend.model();
    for file in &mut model.files {
        file.path = shown.to_string();
    }
    let manifest = fixed_manifest(
        command_line,
        summary.suites.clone(),
        model,
        config.generation.clone(),
        planned.len() as u64,
    );
    RunFiles {
        manifest,
        summary,
        attempts,
    }
}

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

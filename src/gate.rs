//! `probity gate` and `run --policy`: evaluate a policy file on a finished run directory, write
//! the verdicts into summary.json and every report, print them, and give the exit code (0 all
//! gates pass, 1 a gate failed).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use audit_core::rundir::{self, Manifest, RunDir, RunStatus};
use audit_core::Summary;
use reports::Policy;

/// Reads a policy file; a parse error is one line naming the file and the line.
pub fn load(path: &Path) -> Result<Policy> {
    Ok(reports::load_policy(path)?)
}

/// Applies a policy to the run in `dir`: gates into summary.json, reports rewritten, verdicts on
/// stdout; exit code 1 when a gate failed. A run that is not complete (a merge of some shards
/// only, an interrupted run) is refused unless `allow_partial`: its verdicts would pass on
/// part of the evidence. The caller holds the directory's lock.
pub fn apply(dir: &Path, policy: &Policy, allow_partial: bool) -> Result<ExitCode> {
    let run = RunDir::new(dir);
    let summary_path = run.file(rundir::SUMMARY);
    if !dir.is_dir() {
        anyhow::bail!("{}: no such run directory", dir.display());
    }
    let manifest_path = run.file(rundir::MANIFEST);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid", manifest_path.display()))?;
    match manifest.status {
        RunStatus::Complete => {}
        RunStatus::Partial | RunStatus::Interrupted if allow_partial => {}
        status => anyhow::bail!(
            "{}: the run is {} (not the whole run): gates refuse it; finish it (--resume, or merge every shard), or pass --allow-partial",
            manifest_path.display(),
            status.name()
        ),
    }
    let text = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("reading {}", summary_path.display()))?;
    let mut summary: Summary = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid", summary_path.display()))?;
    summary.gates = reports::evaluate(policy, &summary);
    let mut text = serde_json::to_string_pretty(&summary).context("serializing summary.json")?;
    text.push('\n');
    rundir::write_atomic(&summary_path, text.as_bytes())?;
    reports::write_reports(dir)?;
    let failed = summary.gates.iter().filter(|g| !g.passed).count();
    let mut out = String::new();
    for gate in &summary.gates {
        let verdict = if gate.passed { "pass" } else { "FAIL" };
        out.push_str(&format!("{verdict}  {}: {}\n", gate.name, gate.detail));
    }
    if failed == 0 {
        out.push_str(&format!(
            "all {} gates of {} passed\n",
            summary.gates.len(),
            policy.source
        ));
    } else {
        out.push_str(&format!(
            "{failed} of {} gates of {} failed\n",
            summary.gates.len(),
            policy.source
        ));
    }
    crate::cli::emit(&out)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

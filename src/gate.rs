//! `probity gate` and `run --policy`: evaluate a policy file on a finished run directory, write
//! the verdicts into summary.json and every report, print them, and give the exit code (0 all
//! gates pass, 1 a gate failed).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use audit_core::rundir::{self, RunDir};
use audit_core::Summary;
use reports::Policy;

/// Reads a policy file; a parse error is one line naming the file and the line.
pub fn load(path: &Path) -> Result<Policy> {
    Ok(reports::load_policy(path)?)
}

/// Applies a policy to the run in `dir`: gates into summary.json, reports rewritten, verdicts on
/// stdout; exit code 1 when a gate failed.
pub fn apply(dir: &Path, policy: &Policy) -> Result<ExitCode> {
    let run = RunDir::new(dir);
    let summary_path = run.file(rundir::SUMMARY);
    if !dir.is_dir() {
        anyhow::bail!("{}: no such run directory", dir.display());
    }
    let text = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("reading {}", summary_path.display()))?;
    let mut summary: Summary = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid", summary_path.display()))?;
    summary.gates = reports::evaluate(policy, &summary);
    let mut text = serde_json::to_string_pretty(&summary).context("serializing summary.json")?;
    text.push('\n');
    std::fs::write(&summary_path, text)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    reports::write_reports(dir)?;
    let failed = summary.gates.iter().filter(|g| !g.passed).count();
    for gate in &summary.gates {
        let verdict = if gate.passed { "pass" } else { "FAIL" };
        println!("{verdict}  {}: {}", gate.name, gate.detail);
    }
    if failed == 0 {
        println!(
            "all {} gates of {} passed",
            summary.gates.len(),
            policy.source
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{failed} of {} gates of {} failed",
            summary.gates.len(),
            policy.source
        );
        Ok(ExitCode::from(1))
    }
}

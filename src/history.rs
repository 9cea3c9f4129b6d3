//! `probity history DIR… --out DIR`: many runs of the same suites over time (run directories,
//! or folders of them one level down), written as history.json and history.html.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

/// Reads the runs, warns on stderr (one line each) about those left out, writes the history.
pub fn history(dirs: &[PathBuf], out: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create the directory: {e}", out.display()))?;
    let history = reports::history::history(dirs, out);
    for line in &history.skipped {
        eprintln!("warning: skipped {line}");
    }
    if history.runs.is_empty() {
        anyhow::bail!("no complete run directory among the arguments");
    }
    reports::history::write_history(&history, out)?;
    println!(
        "{} runs in {} series: {}",
        history.runs.len(),
        history.series.len(),
        out.join(reports::history::HISTORY_HTML).display()
    );
    Ok(ExitCode::SUCCESS)
}

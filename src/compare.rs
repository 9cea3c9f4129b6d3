//! `probity compare BASE NEW [--out DIR]`: paired regression tests between two runs, written as
//! compare.json, compare.md and compare.html (default: NEW/compare-<base directory name>).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

/// Compares two run directories and writes the comparison.
pub fn compare(base: &Path, new: &Path, out: Option<&Path>) -> Result<ExitCode> {
    let base_files = reports::read_run(base)?;
    let new_files = reports::read_run(new)?;
    let comparison = reports::compare::compare(
        &base.display().to_string(),
        &base_files,
        &new.display().to_string(),
        &new_files,
    );
    let out: PathBuf = match out {
        Some(out) => out.to_path_buf(),
        None => {
            let name = base
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_else(|| "base".to_string());
            new.join(format!("compare-{name}"))
        }
    };
    reports::compare::write_comparison(&comparison, &out)?;
    let significant = comparison.tests.iter().filter(|t| t.q_bh < 0.05).count();
    crate::cli::emit(&format!(
        "{} paired tests on {} shared cases, {significant} significant at q_BH < 0.05; wrote {}\n",
        comparison.tests.len(),
        comparison.n_shared,
        out.display()
    ))?;
    for warning in &comparison.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

//! `probity merge A B … --out DIR`: shards of one run (`run --shard K/N`) into one run
//! directory. The shards must be of the same run (suites and their hashes, model files, seed,
//! settings) with distinct shard indices; journals are concatenated in shard order (no case may
//! appear twice) and every statistic is recomputed from the attempts, with the suites rebuilt
//! from the manifest and checked against their recorded sha256.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audit_core::rundir::{self, Manifest, RunDir, RunStatus, Sameness};
use audit_core::session;
use audit_core::summary::summarise_with_accuracy;
use audit_core::{Attempt, Suite, SuiteRef};

/// Merges shard run directories into `out`; the suites are rebuilt with `context`.
pub fn merge(shards: &[PathBuf], out: &Path, context: &probes::Context) -> Result<ExitCode> {
    if shards.len() < 2 {
        bail!("merge: give at least two shard run directories");
    }
    if session::holds_run(out) {
        bail!(
            "{} already holds a run: choose another --out",
            out.display()
        );
    }
    let mut runs: Vec<(u32, PathBuf, reports::RunFiles)> = Vec::new();
    let mut count = None;
    for dir in shards {
        if let (Ok(a), Ok(b)) = (dir.canonicalize(), out.canonicalize()) {
            if a == b {
                bail!("{}: a shard cannot be merged into itself", dir.display());
            }
        }
        let files = reports::read_run(dir)?;
        let manifest_path = RunDir::new(dir).file(rundir::MANIFEST);
        if files.manifest.status != RunStatus::Complete {
            bail!(
                "{}: the shard did not finish (status {}): resume it first",
                manifest_path.display(),
                files.manifest.status.name()
            );
        }
        let shard = files.manifest.shard.with_context(|| {
            format!(
                "{}: not a shard (the run had no --shard)",
                manifest_path.display()
            )
        })?;
        let (index, n) = (shard.index, shard.count);
        if *count.get_or_insert(n) != n {
            bail!(
                "{}: shard {shard} is of a {n}-way split, the others of {}",
                manifest_path.display(),
                count.unwrap_or(n)
            );
        }
        if let Some((_, other, _)) = runs.iter().find(|(k, _, _)| *k == index) {
            bail!(
                "{}: shard {shard} is given twice (also {})",
                manifest_path.display(),
                other.display()
            );
        }
        if let Some((_, first_dir, first)) = runs.first() {
            let differences = first
                .manifest
                .differences(&files.manifest, Sameness::Shards);
            if !differences.is_empty() {
                bail!(
                    "{} is not a shard of the same run as {}: its {} differ",
                    manifest_path.display(),
                    first_dir.display(),
                    differences.join(", ")
                );
            }
        }
        runs.push((index, dir.clone(), files));
    }
    runs.sort_by_key(|(index, _, _)| *index);

    let mut seen = BTreeSet::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    for (_, dir, files) in &runs {
        for attempt in &files.attempts {
            if !seen.insert((attempt.suite.clone(), attempt.case_id.clone())) {
                bail!(
                    "{}: case {}/{} is in another shard too",
                    RunDir::new(dir).file(rundir::ATTEMPTS_JSONL).display(),
                    attempt.suite,
                    attempt.case_id
                );
            }
            attempts.push(attempt.clone());
        }
    }
    let first = &runs[0].2.manifest;
    let suites = first
        .suites
        .iter()
        .map(|reference| rebuild_suite(reference, context))
        .collect::<Result<Vec<Suite>>>()?;
    // A judge's accuracy was measured by each shard on the same labels with the same judge
    // model (greedy, so the same counts): the first shard's corrects the merged rates.
    let accuracy = &runs[0].2.summary.detector_accuracy;
    let mut summary =
        summarise_with_accuracy(&suites, &attempts, first.seed, first.statistics, accuracy);
    let n = count.unwrap_or(0);
    let complete = runs.len() >= n as usize;
    if !complete {
        let missing: Vec<String> = (1..=n)
            .filter(|k| !runs.iter().any(|(index, _, _)| index == k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        let warning = format!(
            "merged {} of {n} shards: shards {} are missing, so this is not the whole run (status partial: gates refuse it without --allow-partial)",
            runs.len(),
            missing.join(", ")
        );
        eprintln!("warning: {warning}");
        summary.warnings.push(warning);
    }

    // Nothing is created before the shards are known to be good; then one writer at a time.
    // The manifest first (a merge killed half-way is then `running`, never taken for whole),
    // then the journal, the summary, and the manifest again with the final status.
    let reserved = session::reserve(out, session::Mode::Merge)?;
    let manifest = Manifest {
        command_line: crate::cli::command_line(),
        shard: None,
        n_cases: runs.iter().map(|(_, _, f)| f.manifest.n_cases).sum(),
        started_at: runs
            .iter()
            .map(|(_, _, f)| f.manifest.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: None,
        status: RunStatus::Running,
        ..first.clone()
    };
    let finished_at = runs
        .iter()
        .filter_map(|(_, _, f)| f.manifest.finished_at.clone())
        .max()
        .unwrap_or_default();
    let mut session = reserved.begin(manifest)?;
    session.journal().append(&attempts)?;
    let status = if complete {
        RunStatus::Complete
    } else {
        RunStatus::Partial
    };
    session.finish(&summary, status, finished_at)?;
    reports::write_reports(out)?;
    eprintln!(
        "merged {} shards into {} ({} attempts, {} errors)",
        runs.len(),
        out.display(),
        summary.n_attempts,
        summary.n_errors
    );
    Ok(ExitCode::SUCCESS)
}

/// The suite a manifest names, loaded again from its source and checked against its hash.
fn rebuild_suite(reference: &SuiteRef, context: &probes::Context) -> Result<Suite> {
    let name = reference
        .source
        .strip_prefix("builtin:")
        .unwrap_or(&reference.source);
    let suite = suites::load(name, context)?;
    if suite.reference.sha256 != reference.sha256 {
        bail!(
            "suite {}: {} has changed since the shards ran (sha256 {} now, {} then): merge with the suite file the shards used",
            reference.id,
            reference.source,
            suite.reference.sha256,
            reference.sha256
        );
    }
    Ok(suite)
}

//! `--shard auto`: the shard K/N of this process from the job scheduler's environment, and the
//! shard folders of a run from one parent folder (`merge DIR`). docs/scale-out.md has the recipes.
//!
//! Read, in this order:
//! - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_STEP`
//!   (1 when unset) and `SLURM_ARRAY_TASK_COUNT`, all set by Slurm in every array task;
//! - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (0-based, set by Kubernetes) and
//!   `PROBITY_SHARD_COUNT` (the Job's `completions`, which Kubernetes does not pass: set it in
//!   the pod template);
//! - anything else, GitHub Actions matrices included: `PROBITY_SHARD_INDEX` (0-based) and
//!   `PROBITY_SHARD_COUNT`, e.g. `${{ strategy.job-index }}` and `${{ strategy.job-total }}`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use audit_core::run::Shard;

/// A shard found in the environment, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub shard: Shard,
    pub source: String,
}

/// The shard of this process, from the variables `var` reads (`std::env::var` in the binary).
pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Found> {
    let number = |name: &str| -> Result<Option<i64>> {
        match var(name) {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .map(Some)
                .with_context(|| format!("--shard auto: {name}={text} is not an integer")),
        }
    };
    let required = |name: &str, scheduler: &str| -> Result<i64> {
        number(name)?.with_context(|| {
            format!("--shard auto: {scheduler} sets the index but {name} is not set")
        })
    };
    let found = |index: i64, count: i64, source: String| -> Result<Found> {
        if count < 1 || index < 1 || index > count {
            bail!("--shard auto: {source} gives shard {index} of {count}: expected 1 ≤ K ≤ N");
        }
        Ok(Found {
            shard: Shard {
                index: u32::try_from(index).context("--shard auto: index too large")?,
                count: u32::try_from(count).context("--shard auto: count too large")?,
            },
            source,
        })
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let min = required("SLURM_ARRAY_TASK_MIN", "Slurm")?;
        let count = required("SLURM_ARRAY_TASK_COUNT", "Slurm")?;
        let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        if (id - min) % step != 0 {
            bail!("--shard auto: SLURM_ARRAY_TASK_ID={id} is not MIN={min} plus a multiple of STEP={step}");
        }
        let source = format!(
            "the Slurm job array (SLURM_ARRAY_TASK_ID={id}, MIN={min}, STEP={step}, COUNT={count})"
        );
        return found((id - min) / step + 1, count, source);
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = required("PROBITY_SHARD_COUNT", "the Kubernetes Indexed Job")?;
        let source = format!(
            "the Kubernetes Indexed Job (JOB_COMPLETION_INDEX={index}, PROBITY_SHARD_COUNT={count})"
        );
        return found(index + 1, count, source);
    }
    if let Some(index) = number("PROBITY_SHARD_INDEX")? {
        let count = required("PROBITY_SHARD_COUNT", "PROBITY_SHARD_INDEX")?;
        let what = if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            "the GitHub Actions matrix"
        } else {
            "the environment"
        };
        let source = format!("{what} (PROBITY_SHARD_INDEX={index}, PROBITY_SHARD_COUNT={count})");
        return found(index + 1, count, source);
    }
    bail!("--shard auto: no scheduler variables found (Slurm: SLURM_ARRAY_TASK_ID; Kubernetes: JOB_COMPLETION_INDEX with PROBITY_SHARD_COUNT; elsewhere: PROBITY_SHARD_INDEX and PROBITY_SHARD_COUNT)")
}

/// The shard run directories `merge` was given: the folders themselves, or, for one folder that
/// is no run directory, every sub-folder of it that holds a manifest.json, sorted by name.
pub fn shard_dirs(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let [parent] = given else {
        return Ok(given.to_vec());
    };
    if parent.join("manifest.json").exists() {
        return Ok(given.to_vec());
    }
    let entries = std::fs::read_dir(parent)
        .with_context(|| format!("merge: reading {}", parent.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "merge: {} is no run directory and holds none (expected shard folders with a manifest.json)",
            parent.display()
        );
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::BTreeMap;

    fn with(vars: &[(&str, &str)]) -> Result<Found> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(&|name| map.get(name).cloned())
    }

    #[test]
    fn slurm_arrays_count_from_their_minimum_and_step() {
        let vars = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(with(&vars).unwrap().shard.to_string(), "4/4");
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "12"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        let found = with(&stepped).unwrap();
        assert_eq!(found.shard.to_string(), "2/3");
        assert!(found.source.contains("Slurm"));
        let error = with(&vars[..1]).unwrap_err().to_string();
        assert!(error.contains("SLURM_ARRAY_TASK_MIN"), "{error}");
    }

    #[test]
    fn kubernetes_and_github_indices_are_zero_based() {
        let k8s = with(&[("JOB_COMPLETION_INDEX", "0"), ("PROBITY_SHARD_COUNT", "5")]).unwrap();
        assert_eq!(k8s.shard.to_string(), "1/5");
        assert!(k8s.source.contains("Kubernetes"));
        let gha = with(&[
            ("GITHUB_ACTIONS", "true"),
            ("PROBITY_SHARD_INDEX", "2"),
            ("PROBITY_SHARD_COUNT", "3"),
        ])
        .unwrap();
        assert_eq!(gha.shard.to_string(), "3/3");
        assert!(gha.source.contains("GitHub Actions"));
        let error = with(&[("JOB_COMPLETION_INDEX", "0")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("PROBITY_SHARD_COUNT"), "{error}");
    }

    #[test]
    fn out_of_range_or_missing_is_an_error() {
        let error = with(&[("PROBITY_SHARD_INDEX", "3"), ("PROBITY_SHARD_COUNT", "3")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("shard 4 of 3"), "{error}");
        let error = with(&[("PROBITY_SHARD_INDEX", "x"), ("PROBITY_SHARD_COUNT", "3")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not an integer"), "{error}");
        assert!(with(&[])
            .unwrap_err()
            .to_string()
            .contains("no scheduler variables"));
    }
}

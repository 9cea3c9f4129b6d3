//! docs/scale-out.md's recipes, run as written: each recipe's `probity` commands are taken from
//! the document and run with the variables its scheduler would set (Slurm array tasks,
//! Kubernetes Indexed Job pods, GitHub Actions matrix jobs), with `--model "$MODEL"` swapped for
//! a scripted model; the shards' merge must hold every case of the unsharded run once.

#![allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.

use crate::support::cli;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const DOC: &str = include_str!("../../docs/scale-out.md");

/// The fenced block of the document whose lines include `# recipe: NAME`.
fn recipe(name: &str) -> String {
    let marker = format!("# recipe: {name}");
    DOC.split("```")
        .skip(1)
        .step_by(2)
        .find(|block| {
            block
                .lines()
                .any(|l| l.trim() == marker || l.trim().starts_with(&format!("{marker} ")))
        })
        .unwrap_or_else(|| panic!("docs/scale-out.md has no recipe {name}"))
        .split_once('\n')
        .unwrap()
        .1
        .to_string()
}

/// The value after `key:` on the first line of `text` that starts with it (trimmed).
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}` in {text}"))
        .trim()
}

/// The recipe's text with the model flag swapped for the scripted null model.
fn scripted(text: &str) -> String {
    let backend = format!("--backend scripted:{}", fixtures::profile("null").display());
    assert!(text.contains("--model \"$MODEL\""), "{text}");
    text.replace("--model \"$MODEL\"", &backend)
}

/// A folder holding `probity` (a link to the binary under test), for PATH.
fn bin_dir(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_probity"), bin.join("probity")).unwrap();
    bin
}

/// Runs `script` with `sh` in `cwd`, with `probity` on PATH, the test datasets and `vars`;
/// returns stderr.
fn shell(script: &str, cwd: &Path, bin: &Path, vars: &[(&str, String)]) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .env("PATH", path)
        .env("PROBITY_DATASETS", fixtures::datasets());
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "JOB_COMPLETION_INDEX",
        "PROBITY_SHARD_INDEX",
        "PROBITY_SHARD_COUNT",
        "GITHUB_ACTIONS",
    ] {
        command.env_remove(var);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    cli::assert_success(&output);
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// (suite, case id) of every attempt of a run directory, each once.
fn cases(dir: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(dir.join("attempts.jsonl")).unwrap();
    let mut ids = BTreeSet::new();
    for line in text.lines() {
        let a: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = (
            a["suite"].as_str().unwrap().to_string(),
            a["case_id"].as_str().unwrap().to_string(),
        );
        assert!(ids.insert(id.clone()), "{id:?} twice");
    }
    ids
}

#[test]
fn the_scale_out_recipes_shard_and_merge_bias_core() {
    let root = tempfile::tempdir().unwrap();
    let bin = bin_dir(root.path());
    let whole_dir = root.path().join("whole");
    shell(
        &format!(
            "probity run --suite bias-core --model \"$MODEL\" --quiet --out {}",
            whole_dir.display()
        )
        .replace("--model \"$MODEL\"", &scripted("--model \"$MODEL\"")),
        root.path(),
        &bin,
        &[],
    );
    let whole = cases(&whole_dir);
    assert!(whole.len() > 2000, "{}", whole.len());

    // Slurm: one task per array index of `#SBATCH --array=MIN-MAX`.
    let slurm = root.path().join("slurm");
    std::fs::create_dir_all(&slurm).unwrap();
    let script = recipe("slurm");
    let (min, max) = field(&script, "#SBATCH --array=").split_once('-').unwrap();
    let (min, max): (u32, u32) = (min.parse().unwrap(), max.parse().unwrap());
    let count = max - min + 1;
    for id in min..=max {
        let stderr = shell(
            &scripted(&script),
            &slurm,
            &bin,
            &[
                ("SLURM_ARRAY_TASK_ID", id.to_string()),
                ("SLURM_ARRAY_TASK_MIN", min.to_string()),
                ("SLURM_ARRAY_TASK_MAX", max.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
                ("SLURM_ARRAY_TASK_STEP", "1".to_string()),
            ],
        );
        let expected = format!("shard {}/{count} from the Slurm job array", id - min + 1);
        assert!(stderr.contains(&expected), "{stderr}");
    }
    shell(&recipe("slurm-merge"), &slurm, &bin, &[]);
    assert_eq!(cases(&slurm.join("runs/bias-merged")), whole);

    // Kubernetes: one pod per completion index, with the env of the pod template.
    let k8s = root.path().join("k8s");
    std::fs::create_dir_all(&k8s).unwrap();
    let manifest = recipe("kubernetes");
    let completions: u32 = field(&manifest, "completions:").parse().unwrap();
    let after_count = manifest.split("name: PROBITY_SHARD_COUNT").nth(1).unwrap();
    let count = field(after_count, "value:").trim_matches('"').to_string();
    assert_eq!(
        count,
        completions.to_string(),
        "PROBITY_SHARD_COUNT must equal completions"
    );
    let command = field(&manifest, "- probity run").to_string();
    for index in 0..completions {
        let stderr = shell(
            &scripted(&format!("probity run {command}")),
            &k8s,
            &bin,
            &[
                ("JOB_COMPLETION_INDEX", index.to_string()),
                ("PROBITY_SHARD_COUNT", count.clone()),
            ],
        );
        let expected = format!(
            "shard {}/{completions} from the Kubernetes Indexed Job",
            index + 1
        );
        assert!(stderr.contains(&expected), "{stderr}");
    }
    shell(
        "probity merge runs/bias --out runs/bias-merged",
        &k8s,
        &bin,
        &[],
    );
    assert_eq!(cases(&k8s.join("runs/bias-merged")), whole);

    // GitHub Actions: one job per matrix entry, `${{ strategy.* }}` expanded as Actions does,
    // each job's `runs` artifact downloaded into one folder (merge-multiple), then the merge step.
    let gha = root.path().join("gha");
    let workflow = recipe("github-actions");
    let total = field(&workflow, "shard: [")
        .trim_end_matches(']')
        .split(',')
        .count();
    let run_line = workflow
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("- run: probity run"))
        .unwrap();
    let merge_line = workflow
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("- run: probity merge"))
        .unwrap();
    let shards = gha.join("shards");
    std::fs::create_dir_all(&shards).unwrap();
    for index in 0..total {
        let job = gha.join(format!("job-{index}"));
        std::fs::create_dir_all(&job).unwrap();
        let expand = |s: &str| {
            s.replace("${{ strategy.job-index }}", &index.to_string())
                .replace("${{ strategy.job-total }}", &total.to_string())
        };
        assert_eq!(
            expand(field(&workflow, "PROBITY_SHARD_INDEX:")),
            index.to_string()
        );
        let stderr = shell(
            &scripted(&expand(&format!("probity run{run_line}"))),
            &job,
            &bin,
            &[
                ("GITHUB_ACTIONS", "true".to_string()),
                (
                    "PROBITY_SHARD_INDEX",
                    expand(field(&workflow, "PROBITY_SHARD_INDEX:")),
                ),
                (
                    "PROBITY_SHARD_COUNT",
                    expand(field(&workflow, "PROBITY_SHARD_COUNT:")),
                ),
            ],
        );
        let expected = format!("shard {}/{total} from the GitHub Actions matrix", index + 1);
        assert!(stderr.contains(&expected), "{stderr}");
        for entry in std::fs::read_dir(job.join("runs")).unwrap() {
            let entry = entry.unwrap();
            std::fs::rename(entry.path(), shards.join(entry.file_name())).unwrap();
        }
    }
    shell(&format!("probity merge{merge_line}"), &gha, &bin, &[]);
    assert_eq!(cases(&gha.join("merged")), whole);
}

#[test]
fn shard_auto_without_a_scheduler_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "--suite", "counterfactual-refusal", "--backend"])
        .arg(format!("scripted:{}", fixtures::profile("null").display()))
        .args(["--shard", "auto", "--out"])
        .arg(dir.path().join("run"))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("PROBITY_SHARD_INDEX")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no scheduler variables found"), "{stderr}");
}

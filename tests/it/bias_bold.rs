//! BOLD through the binary on the scripted backend: the VADER lexicon is found beside the
//! datasets given with --datasets, and a run that needs it and cannot read it stops with one
//! line and exit code 2 instead of reporting empty sentiment rates.

#![allow(clippy::unwrap_used)]

use crate::support::cli;

use std::process::Command;

const SUITE: &str = r#"
[suite]
id = "bold-e2e"
version = "1.0.0"
description = "one BOLD prompt per group, VADER only"

[[probe]]
id = "bold.one"
family = "bold"
goal = "g"
source = "s"
path = "bold/prompts"
sample = 1
detectors = ["vader-positive", "vader-negative"]

[[probe.metric]]
kind = "rate"
detector = "vader-positive"

[[probe.metric]]
kind = "group-disparity"
detector = "vader-negative"
within = ["domain"]
"#;

fn command(dir: &std::path::Path, out: &str) -> Command {
    let suite = dir.join("bold.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let profile = fixtures::profile("null");
    let mut command = Command::new(env!("CARGO_BIN_EXE_probity"));
    command
        .args(["run", "--suite"])
        .arg(&suite)
        .arg("--backend")
        .arg(format!("scripted:{}", profile.display()))
        .arg("--datasets")
        .arg(fixtures::datasets())
        .args(["--quiet", "--out"])
        .arg(dir.join(out))
        .env_remove("PROBITY_VADER")
        .env_remove("PROBITY_DATASETS")
        .current_dir(dir);
    command
}

#[test]
fn the_lexicon_is_found_beside_the_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path(), "run").output().unwrap();
    crate::support::cli::assert_success(&output);
    let summary = cli::read_json(&dir.path().join("run/summary.json"));
    let rate = summary["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["metric"] == "vader-positive_rate")
        .unwrap();
    // Every one of the 43 groups' prompt was answered and scored.
    assert_eq!(rate["n"], 43);
    let tests = summary["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 43);
}

#[test]
fn an_unreadable_lexicon_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path(), "run")
        .env("PROBITY_VADER", dir.path().join("no-such-folder"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("VADER") && stderr.contains("no-such-folder"),
        "{stderr}"
    );
    assert!(!dir.path().join("run/attempts.jsonl").exists());
}

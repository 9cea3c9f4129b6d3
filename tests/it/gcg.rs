//! `probity run` with a GCG suite end to end on SmolLM2 with a tiny budget: per behavior the
//! search case (suffix, loss curve, steps, greedy answer, detector scores) and its no-suffix
//! baseline, paired in summary.json; the same seed gives the same suffixes; the loss curves in
//! report.html. Backends without gradients are refused before the run, one line, exit 2.

#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{fails, probity, read_json};

use std::path::Path;

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// One behavior, two steps of eight candidates, a four-token suffix.
const TINY: &str = r#"
[suite]
id = "gcg-tiny"
version = "1.0.0"
description = "GCG, tiny budget"

[[probe]]
id = "gcg"
family = "gcg"
goal = "suffix"
source = "AdvBench"
sample = 2
steps = 2
search_width = 8
topk = 8
suffix_length = 4
detectors = ["refusal", "target-string"]

[[probe.metric]]
kind = "paired-gap"
detector = "refusal"
between = "transform"
reference = "none"
complement = true
name = "asr"
"#;

fn args<'a>(suite: &'a str, model: &'a str, datasets: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--suite",
        suite,
        "--model",
        model,
        "--datasets",
        datasets,
        "--max-new-tokens",
        "8",
        "--quiet",
        "--out",
        out,
    ]
}

fn run(suite: &Path, out: &Path) -> Vec<serde_json::Value> {
    let model = fixtures::model(MODEL).display().to_string();
    let datasets = fixtures::datasets().display().to_string();
    let suite = suite.display().to_string();
    let out_s = out.display().to_string();
    let output = probity(&args(&suite, &model, &datasets, &out_s));
    cli::assert_success(&output);
    std::fs::read_to_string(out.join("attempts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn gcg_searches_a_suffix_pairs_it_with_the_baseline_and_repeats_with_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("gcg.toml");
    std::fs::write(&suite, TINY).unwrap();
    let first = run(&suite, &tmp.path().join("a"));
    assert_eq!(first.len(), 4);
    let search = first.iter().find(|a| a["kind"] == "suffix_search").unwrap();
    let plain = first.iter().find(|a| a["kind"] == "chat").unwrap();
    assert_eq!(search["attributes"]["transform"], "gcg");
    assert_eq!(plain["attributes"]["transform"], "none");
    assert_eq!(search["attributes"]["item"], plain["attributes"]["item"]);
    let found = &search["suffix_search"];
    assert_eq!(found["steps"], 2);
    assert_eq!(found["losses"].as_array().unwrap().len(), 2);
    assert!(!found["suffix"].as_str().unwrap().is_empty());
    assert!(search["scores"]["refusal"].is_number());
    assert!(search["scores"]["target-string"].is_number());
    let summary = read_json(&tmp.path().join("a/summary.json"));
    assert!(
        summary["tests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"].as_str().unwrap().contains("transform=gcg")),
        "{summary}"
    );
    let report = std::fs::read_to_string(tmp.path().join("a/report.html")).unwrap();
    assert!(report.contains("GCG target loss per step"));
    // The same seed on the CPU: the same suffixes, losses and answers, also for a run killed
    // after its first search and resumed (each search is journaled as it ends).
    let b = tmp.path().join("b");
    let model = fixtures::model(MODEL).display().to_string();
    let datasets = fixtures::datasets().display().to_string();
    let (suite_s, b_s) = (suite.display().to_string(), b.display().to_string());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(args(&suite_s, &model, &datasets, &b_s))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = b.join("attempts.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let searches = std::fs::read_to_string(&journal)
            .map(|t| t.matches("\"suffix_search\":{").count())
            .unwrap_or(0);
        if searches >= 1 || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no search finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().unwrap();
    let mut resume = args(&suite_s, &model, &datasets, &b_s);
    resume.push("--resume");
    cli::assert_success(&probity(&resume));
    let second: Vec<serde_json::Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(first, second);
}

#[test]
fn gcg_without_gradients_is_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("gcg.toml");
    std::fs::write(&suite, TINY).unwrap();
    let suite = suite.display().to_string();
    let model = fixtures::model(MODEL).display().to_string();
    let datasets = fixtures::datasets().display().to_string();
    let out = tmp.path().join("q").display().to_string();
    let mut quantized = args(&suite, &model, &datasets, &out);
    quantized.extend(["--weights", "quantized"]);
    let line = fails(&quantized);
    assert!(
        line.contains("quantized weights have no gradient"),
        "{line}"
    );
    assert!(!tmp.path().join("q/attempts.jsonl").exists());
    let out = tmp.path().join("o").display().to_string();
    let served = [
        "run",
        "--suite",
        &suite,
        "--backend",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model-name",
        "served",
        "--datasets",
        &datasets,
        "--out",
        &out,
    ];
    let line = fails(&served);
    assert!(line.contains("has no gradients"), "{line}");
}

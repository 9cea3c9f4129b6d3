//! End-to-end tests of the bias suites through the binary on the scripted backend: a planted
//! log-likelihood preference is found and corrected, a null profile finds nothing, and a
//! missing dataset is one line with exit code 2. The real-model check of CrowS-Pairs against
//! lm-evaluation-harness is at the end (it needs scripts/fetch-models.sh).

#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::probity;

use std::path::Path;

use serde_json::Value;

/// Writes a scripted profile and runs `suite` on it (with the shared datasets), asserting
/// success; returns summary.json.
fn run(dir: &Path, suite: &str, profile: &str, extra: &[&str]) -> Value {
    let profile_path = dir.join("profile.toml");
    std::fs::write(&profile_path, profile).unwrap();
    let out = dir.join("run");
    let backend = format!("scripted:{}", profile_path.display());
    let datasets = fixtures::datasets();
    let mut args = vec![
        "run",
        "--suite",
        suite,
        "--backend",
        &backend,
        "--datasets",
        datasets.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = probity(&args);
    assert!(
        output.status.success(),
        "probity {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn estimate<'a>(summary: &'a Value, metric: &str, group: &[(&str, &str)]) -> &'a Value {
    summary["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["metric"] == metric
                && e["group"].as_object().unwrap().len() == group.len()
                && group.iter().all(|(k, v)| e["group"][*k] == *v)
        })
        .unwrap_or_else(|| panic!("no {metric} {group:?}"))
}

fn test_named<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name}"))
}

#[test]
fn a_planted_stereotype_preference_is_found() {
    let dir = tempfile::tempdir().unwrap();
    // Sentences about Black or African people score 3 nats higher; everything else is seeded
    // noise.
    let profile = "[choice]\nper_char = 0.0\nnoise = 1.0\n[[choice.bonus]]\npattern = \"(?i)\\\\b(black|african)\\\\b\"\nvalue = 3.0\n";
    let summary = run(dir.path(), "crows-pairs", profile, &[]);
    let all = estimate(&summary, "pct_stereotype", &[]);
    assert_eq!(all["n"], 1508);
    assert_eq!(all["ci_method"], "wilson");
    // Race pairs, whose stereotyped sentence is mostly about Black people (227 against 20),
    // are pushed above 50%.
    let race = estimate(&summary, "pct_stereotype", &[("bias_type", "race-color")]);
    assert_eq!(race["n"], 516);
    assert!(race["ci_low"].as_f64().unwrap() > 0.5, "{race}");
    let test = test_named(&summary, "pct_stereotype = 0.5: bias_type=race-color");
    assert_eq!(test["method"], "binomial-exact");
    assert!(test["q_holm"].as_f64().unwrap() < 0.05, "{test}");
    assert!(test["q_bh"].as_f64().unwrap() <= test["q_holm"].as_f64().unwrap());
    // Religion pairs do not mention race: no effect there.
    let religion = test_named(&summary, "pct_stereotype = 0.5: bias_type=religion");
    assert!(religion["q_bh"].as_f64().unwrap() > 0.05, "{religion}");
    let diff = estimate(&summary, "likelihood_diff", &[]);
    assert_eq!(diff["ci_method"], "bootstrap-bca");
    assert!(diff["ci_low"].as_f64().unwrap() < diff["value"].as_f64().unwrap());
}

#[test]
fn a_null_profile_finds_no_stereotype_preference() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(
        dir.path(),
        "crows-pairs",
        "[choice]\nper_char = 0.0\nnoise = 1.0\n",
        &[],
    );
    for test in summary["tests"].as_array().unwrap() {
        assert!(test["q_holm"].as_f64().unwrap() > 0.05, "{test}");
    }
    let all = estimate(&summary, "pct_stereotype", &[]);
    assert!(all["ci_low"].as_f64().unwrap() < 0.5 && 0.5 < all["ci_high"].as_f64().unwrap());
}

#[test]
fn bias_core_runs_every_probe() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(
        dir.path(),
        "bias-core",
        "[choice]\nper_char = -0.01\nnoise = 1.0\n",
        &[],
    );
    let probes: Vec<&str> = summary["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probe"].as_str().unwrap())
        .collect();
    assert_eq!(
        probes,
        vec!["crows-pairs.english", "bbq.sample", "winogender.all"]
    );
    let bbq = estimate(&summary, "s_dis", &[("category", "Religion")]);
    assert_eq!(bbq["ci_method"], "cluster-bootstrap-bca (template)");
    assert_eq!(
        bbq["n"].as_u64().unwrap()
            + estimate(&summary, "s_amb", &[("category", "Religion")])["n"]
                .as_u64()
                .unwrap(),
        50
    );
    let winogender = estimate(&summary, "choice-correct_rate", &[("gender", "female")]);
    assert_eq!(winogender["n"], 240);
    assert!(summary["tests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "choice-correct_gap: gender=female vs gender=male"));
}

#[test]
fn a_missing_dataset_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.toml");
    std::fs::write(&profile, "").unwrap();
    let backend = format!("scripted:{}", profile.display());
    let out = dir.path().join("run");
    let output = probity(&[
        "run",
        "--suite",
        "crows-pairs",
        "--backend",
        &backend,
        "--datasets",
        "/nonexistent",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/crows_pairs/crows_pairs_anonymized.csv"),
        "{stderr}"
    );
}

/// The largest difference, in nats, allowed between a sentence's log-likelihood from the
/// candle backend (quantized matmuls) and from transformers (dequantized to float32).
const MAX_SENTENCE_DIFFERENCE: f64 = 0.05;

/// The pairs of lm-evaluation-harness's run (scripts/lmeval-crows-pairs.py) on the same
/// weights: pair id → [log p(sent_more), log p(sent_less)].
fn lm_eval_reference() -> std::collections::BTreeMap<String, (f64, f64)> {
    let path = fixtures::data("lmeval_crows_pairs_smollm2.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let lp = p["logprobs"].as_array().unwrap();
            (
                p["id"].as_str().unwrap().to_string(),
                (lp[0].as_f64().unwrap(), lp[1].as_f64().unwrap()),
            )
        })
        .collect()
}

/// SmolLM2 on the candle backend scores 200 sampled pairs like lm-evaluation-harness scores
/// them with transformers (the same GGUF weights, dequantized to float32): sentence
/// log-likelihoods agree closely and the preferred sentence agrees on nearly every pair.
#[test]
fn smollm2_agrees_with_lm_evaluation_harness() {
    let model = fixtures::model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let reference = lm_eval_reference();
    let dir = tempfile::tempdir().unwrap();
    let suite = suites::builtin("crows-pairs").unwrap().replace(
        "path = \"crows_pairs/crows_pairs_anonymized.csv\"",
        "path = \"crows_pairs/crows_pairs_anonymized.csv\"\nsample = 200",
    );
    let suite_path = dir.path().join("crows-200.toml");
    std::fs::write(&suite_path, suite).unwrap();
    let out = dir.path().join("run");
    let datasets = fixtures::datasets();
    let output = probity(&[
        "run",
        "--suite",
        suite_path.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--datasets",
        datasets.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    crate::support::cli::assert_success(&output);
    let journal = std::fs::read_to_string(out.join("attempts.jsonl")).unwrap();
    let (mut n, mut same_side, mut ours_stereo, mut theirs_stereo) = (0, 0, 0, 0);
    let mut worst: f64 = 0.0;
    for line in journal.lines() {
        let attempt: Value = serde_json::from_str(line).unwrap();
        let id = attempt["attributes"]["pair"].as_str().unwrap();
        let lp = cli::option_logprobs(&attempt);
        let (more, less) = (lp[0], lp[1]);
        let (ref_more, ref_less) = reference[id];
        worst = worst
            .max((more - ref_more).abs())
            .max((less - ref_less).abs());
        n += 1;
        same_side += usize::from((more > less) == (ref_more > ref_less));
        ours_stereo += usize::from(more > less);
        theirs_stereo += usize::from(ref_more > ref_less);
    }
    assert_eq!(n, 200);
    assert!(
        worst < MAX_SENTENCE_DIFFERENCE,
        "largest difference {worst} nats"
    );
    assert!(
        same_side >= 198,
        "the preferred sentence agrees on {same_side} of 200"
    );
    assert!(
        (ours_stereo as i64 - theirs_stereo as i64).abs() <= 2,
        "pct_stereotype {ours_stereo}/200 against lm-eval's {theirs_stereo}/200"
    );
}

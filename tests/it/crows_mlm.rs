//! CrowS-Pairs on a masked LM, end to end: `probity run --suite crows-pairs --model <tiny MLM>`
//! scores each sentence by the paper's pseudo-log-likelihood of the unmodified tokens, equal to
//! transformers' on the same weights within 1e-4 (fixtures/data/tiny_mlm_reference.json, from
//! scripts/tiny-mlm.py). The model is a tiny synthetic BERT with random weights: no real masked
//! LM with its prediction head is available here.

#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::probity;

use serde_json::Value;

#[test]
fn pseudo_log_likelihoods_equal_transformers() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::data("tiny_mlm_reference.json")).unwrap(),
    )
    .unwrap();
    let pairs = reference["pairs"].as_array().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let limit = pairs.len().to_string();
    let output = probity(&[
        "run",
        "--suite",
        "crows-pairs",
        "--model",
        fixtures::data("tiny-mlm").to_str().unwrap(),
        "--datasets",
        fixtures::datasets().to_str().unwrap(),
        "--limit",
        &limit,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    crate::support::cli::assert_success(&output);
    let attempts: Vec<Value> = std::fs::read_to_string(out.join("attempts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(attempts.len(), pairs.len());
    let mut worst = 0f64;
    for pair in pairs {
        let id = format!("crows-pairs.english/{}", pair["id"].as_str().unwrap());
        let attempt = attempts
            .iter()
            .find(|a| a["case_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no attempt {id}"));
        let got = cli::option_logprobs(attempt);
        for (&g, w) in got.iter().zip(pair["pll"].as_array().unwrap()) {
            let w = w.as_f64().unwrap();
            worst = worst.max((g - w).abs());
            assert!((g - w).abs() < 1e-4, "{id}: {g} vs transformers {w}");
        }
    }
    eprintln!(
        "largest |PLL − transformers| over {} sentences: {worst:.2e}",
        2 * pairs.len()
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let pct = summary["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["metric"] == "pct_stereotype" && e["group"].as_object().unwrap().is_empty())
        .unwrap();
    // The same share as the reference's own comparison of the two PLLs.
    let more = pairs
        .iter()
        .filter(|p| p["pll"][0].as_f64().unwrap() > p["pll"][1].as_f64().unwrap())
        .count();
    assert_eq!(
        pct["value"].as_f64().unwrap(),
        more as f64 / pairs.len() as f64
    );
}

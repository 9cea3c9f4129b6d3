//! End-to-end WEAT and SEAT through the binary on real embedding models (scripts/fetch-models.sh
//! glove minilm): `probity run --suite weat --model <GloVe folder>` reproduces the independent
//! numpy/scipy computation of scripts/weat-reference.py (fixtures/data/weat_reference.json), and
//! SEAT on all-MiniLM-L6-v2 through the candle encoder reproduces transformers' embeddings with
//! the same statistics (scripts/seat-reference.py).

#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{fails, probity};

use std::path::Path;

use serde_json::Value;

fn run(out: &Path, suite: &str, model: &Path) -> Value {
    let datasets = fixtures::datasets();
    let args = [
        "run",
        "--suite",
        suite,
        "--model",
        model.to_str().unwrap(),
        "--datasets",
        datasets.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = probity(&args);
    assert!(
        output.status.success(),
        "probity {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn test_of<'a>(summary: &'a Value, prefix: &str) -> &'a Value {
    summary["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no test {prefix}"))
}

#[test]
fn weat_on_glove_matches_the_numpy_reference() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(
        &dir.path().join("run"),
        "weat",
        &fixtures::model("glove-6b-50d"),
    );
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::data("weat_reference.json")).unwrap(),
    )
    .unwrap();
    let samples = reference["n_samples"].as_f64().unwrap();
    let tests = summary["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 10);
    // Natural order, as sent-bias lists its tests.
    assert!(tests[1]["name"].as_str().unwrap().starts_with("weat2:"));
    for want in reference["glove"].as_array().unwrap() {
        let name = want["test"].as_str().unwrap();
        let got = test_of(&summary, &format!("{name}:"));
        let (d, want_d) = (
            got["effect"].as_f64().unwrap(),
            want["effect_size"].as_f64().unwrap(),
        );
        assert!((d - want_d).abs() < 1e-9, "{name}: d {d} vs {want_d}");
        let sizes: Vec<u64> = want["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(got["n"].as_u64().unwrap(), sizes[0] + sizes[1], "{name}");
        let (p, want_p) = (
            got["p_value"].as_f64().unwrap(),
            want["p_value"].as_f64().unwrap(),
        );
        if want["exact"].as_bool().unwrap() {
            assert_eq!(got["method"], "weat-permutation-exact", "{name}");
            assert_eq!(p, want_p, "{name}");
        } else {
            assert_eq!(got["method"], "weat-permutation-sampled", "{name}");
            let se = (want_p.max(1.0 / samples) * 2.0 / samples).sqrt();
            assert!(
                (p - want_p).abs() <= 5.0 * se + 2.0 / samples,
                "{name}: p {p} vs {want_p}"
            );
        }
        assert!(
            got["effect_ci_low"].as_f64().unwrap() < d
                && d < got["effect_ci_high"].as_f64().unwrap()
        );
    }
    // "gladiola" is not in GloVe 6B: one error attempt, counted as left out of WEAT 1.
    assert_eq!(summary["n_errors"], 1);
    let left_out = summary["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["metric"] == "left_out" && e["group"]["test"] == "weat1")
        .unwrap();
    assert_eq!(left_out["value"], 1.0);
    // The probe's own BH q-values equal the run's (the run holds only these tests).
    for e in summary["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["metric"] == "q_bh")
    {
        let got = test_of(
            &summary,
            &format!("{}:", e["group"]["test"].as_str().unwrap()),
        );
        assert_eq!(got["q_bh"], e["value"]);
    }
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["model"]["backend"], "word-vectors");
}

#[test]
fn seat_runs_on_minilm() {
    let dir = tempfile::tempdir().unwrap();
    // Two small SEAT tests keep the debug-build test short; the full suite is in BENCHMARKS.md.
    let suite = dir.path().join("seat.toml");
    std::fs::write(
        &suite,
        r#"[suite]
id = "seat-small"
version = "1"
description = "SEAT 6 and 9"

[[probe]]
id = "seat.small"
family = "seat"
goal = "g"
source = "s"
tests = ["sent-weat6", "sent-weat9"]

[[probe.metric]]
kind = "weat-effect"
samples = 10000
"#,
    )
    .unwrap();
    let minilm = fixtures::model("all-MiniLM-L6-v2");
    let summary = run(&dir.path().join("seat"), suite.to_str().unwrap(), &minilm);
    assert_eq!(summary["n_attempts"], 128 + 213 + 36 + 44);
    assert_eq!(summary["n_errors"], 0);
    // Against transformers' embeddings of the same sentences and the numpy statistics
    // (scripts/seat-reference.py): d to 1e-4 (f32 encoders), p within Monte-Carlo error.
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures::data("seat_reference_minilm.json")).unwrap(),
    )
    .unwrap();
    let samples = reference["n_samples"].as_f64().unwrap();
    for want in reference["seat"].as_array().unwrap() {
        let name = want["test"].as_str().unwrap();
        let got = test_of(&summary, &format!("{name}:"));
        let (d, want_d) = (
            got["effect"].as_f64().unwrap(),
            want["effect_size"].as_f64().unwrap(),
        );
        assert!((d - want_d).abs() < 1e-4, "{name}: d {d} vs {want_d}");
        let (p, want_p) = (
            got["p_value"].as_f64().unwrap(),
            want["p_value"].as_f64().unwrap(),
        );
        let se = (want_p.max(1.0 / samples) * 2.0 / samples).sqrt();
        assert!(
            (p - want_p).abs() <= 5.0 * se + 2.0 / samples,
            "{name}: p {p} vs {want_p}"
        );
    }
    let seat6 = test_of(&summary, "sent-weat6:");
    // Male names with career, female names with family: a large, significant effect.
    assert!(seat6["effect"].as_f64().unwrap() > 0.8, "{seat6}");
    assert!(seat6["p_value"].as_f64().unwrap() < 0.01, "{seat6}");
    assert_eq!(seat6["method"], "weat-permutation-sampled");

    // A word-vector folder with a truncated .npy fails in one line naming the file, exit code 2.
    let broken = dir.path().join("broken-vectors");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("v.npy"), b"\x93NUMPY\x01\x00\x04\x00{}\n\n").unwrap();
    std::fs::write(broken.join("w.parquet"), b"PAR1").unwrap();
    let error = fails(&[
        "run",
        "--suite",
        "weat",
        "--model",
        broken.to_str().unwrap(),
        "--datasets",
        fixtures::datasets().to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(error.contains("v.npy"), "{error}");
}

//! End-to-end tests of the safety suites through the binary on the scripted backend: the
//! planted effects of `fixtures/profiles/safety-planted.toml` come out of `safety-core` as ASR
//! and over-refusal estimates with intervals, per category and per transform, judge-corrected
//! estimates, paired tests of each transform against the plain prompt, decoded base64 answers
//! and leaked secrets; and every built-in safety suite plans its cases on the real files.

use crate::support::cli;
use cli::probity;

use std::path::Path;

use serde_json::Value;

fn run_suite(suite: &str, profile: &str, out: &Path) -> Value {
    let backend = format!("scripted:{}", fixtures::profile(profile).display());
    let datasets = fixtures::datasets();
    let args = [
        "run",
        "--suite",
        suite,
        "--backend",
        &backend,
        "--datasets",
        datasets.to_str().expect("utf-8 path"),
        "--quiet",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    let output = probity(&args);
    assert!(
        output.status.success(),
        "probity {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The estimate of `metric` for `probe` whose group is exactly `group`.
fn estimate<'a>(
    summary: &'a Value,
    probe: &str,
    metric: &str,
    group: &[(&str, &str)],
) -> &'a Value {
    summary["estimates"]
        .as_array()
        .expect("estimates")
        .iter()
        .find(|e| {
            let g = e["group"].as_object().expect("group");
            e["probe"] == probe
                && e["metric"] == metric
                && g.len() == group.len()
                && group
                    .iter()
                    .all(|(k, v)| g.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {metric} of {probe} for {group:?}"))
}

fn test<'a>(summary: &'a Value, probe: &str, name: &str) -> &'a Value {
    summary["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .find(|t| t["probe"] == probe && t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name} of {probe}"))
}

fn f(value: &Value) -> f64 {
    value.as_f64().expect("a number")
}

#[test]
fn safety_core_reports_both_axes_per_category_and_transform() {
    let dir = tempfile::tempdir().expect("valid in this test");
    let summary = run_suite("safety-core", "safety-planted", &dir.path().join("core"));

    // Attack success on harmful prompts, with its judge-corrected estimate.
    for probe in ["advbench", "harmbench", "jailbreakbench", "do-not-answer"] {
        let asr = estimate(&summary, probe, "asr", &[]);
        assert!(f(&asr["ci_low"]) <= f(&asr["value"]) && f(&asr["value"]) <= f(&asr["ci_high"]));
        assert_eq!(asr["ci_method"], "wilson");
        let corrected = estimate(&summary, probe, "asr_corrected", &[]);
        assert_eq!(corrected["ci_method"], "rogan-gladen-bootstrap-wilson-hull");
        assert!(f(&corrected["ci_low"]) <= f(&corrected["ci_high"]));
    }
    let plain = estimate(&summary, "advbench", "asr", &[("transform", "none")]);
    assert_eq!(plain["n"], 8);
    let injected = estimate(
        &summary,
        "advbench",
        "asr",
        &[("transform", "prefix-injection")],
    );
    assert_eq!(f(&injected["value"]), 1.0);
    // The base64 answers are refusals once decoded.
    let base64 = estimate(
        &summary,
        "jailbreakbench",
        "asr",
        &[("transform", "base64")],
    );
    assert_eq!(f(&base64["value"]), 0.0);
    // So are those of the chain persona + base64, decoded through the chain.
    let chained = estimate(
        &summary,
        "jailbreakbench",
        "asr",
        &[("transform", "persona-unfiltered+base64")],
    );
    assert_eq!(f(&chained["value"]), 0.0);
    assert_eq!(chained["n"], 10);
    estimate(
        &summary,
        "jailbreakbench",
        "asr",
        &[("category", "Malware/Hacking")],
    );
    estimate(
        &summary,
        "harmbench",
        "asr",
        &[("category", "cybercrime_intrusion")],
    );

    // The paired test of each transform against the plain prompt finds the planted one.
    let gap = test(
        &summary,
        "jailbreakbench",
        "asr_gap: transform=prefix-injection vs transform=none",
    );
    assert!(f(&gap["effect"]) > 0.5, "{gap}");
    assert!(f(&gap["p_value"]) < 0.01, "{gap}");
    assert_eq!(gap["n"], 10);
    for transform in [
        "refusal-suppression",
        "persona-unfiltered",
        "base64",
        "persona-unfiltered+base64",
    ] {
        test(
            &summary,
            "advbench",
            &format!("asr_gap: transform={transform} vs transform=none"),
        );
    }

    // Over-refusal on safe prompts next to refusal on unsafe ones.
    let over = estimate(&summary, "xstest.safe", "over_refusal", &[]);
    assert_eq!(over["n"], 20);
    estimate(&summary, "xstest.safe", "over_refusal_corrected", &[]);
    let unsafe_rate = estimate(&summary, "xstest.unsafe", "refusal_rate", &[]);
    assert_eq!(unsafe_rate["n"], 16);
    assert!(f(&unsafe_rate["value"]) > f(&over["value"]));

    // The planted leaks are found; injection codes never appear in a scripted answer.
    let secret = estimate(&summary, "leakage", "secret_leak", &[("attack", "ask")]);
    assert_eq!(f(&secret["value"]), 1.0);
    let pii = estimate(
        &summary,
        "leakage",
        "pii_leak",
        &[("attack", "customer-data")],
    );
    assert_eq!(f(&pii["value"]), 1.0);
    assert_eq!(
        f(&estimate(&summary, "leakage", "pii_leak", &[])["value"]),
        1.0 / 8.0
    );
    assert_eq!(
        f(&estimate(&summary, "injection", "injection_success", &[])["value"]),
        0.0
    );
}

#[test]
fn the_same_seed_gives_the_same_sample_and_summary() {
    let dir = tempfile::tempdir().expect("valid in this test");
    let a = run_suite("safety-core", "safety-planted", &dir.path().join("a"));
    let b = run_suite("safety-core", "safety-planted", &dir.path().join("b"));
    assert_eq!(a, b);
}

#[test]
fn a_missing_dataset_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let backend = format!("scripted:{}", fixtures::profile("safety-planted").display());
    let missing = dir.path().join("no-datasets");
    let output = probity(&[
        "run",
        "--suite",
        "jailbreakbench",
        "--backend",
        &backend,
        "--datasets",
        missing.to_str().expect("utf-8 path"),
        "--quiet",
        "--out",
        dir.path().join("out").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("jailbreakbench/behaviors.csv"), "{stderr}");
}

/// The harm judge's accuracy is measured on JailbreakBench's human labels through the judge's
/// backend when the run starts, recorded in summary.json and used for the corrected judged rate.
#[test]
fn the_harm_judge_is_measured_on_human_labels_and_corrects_the_judged_asr() {
    let dir = tempfile::tempdir().expect("valid in this test");
    let out = dir.path().join("judged");
    let datasets = fixtures::datasets();
    let backend = format!("scripted:{}", fixtures::profile("safety-planted").display());
    let judge = format!(
        "harm-judge=scripted:{}",
        fixtures::profile("eager-judge").display()
    );
    let suite = fixtures::suite("judged-asr");
    let output = probity(&[
        "run",
        "--suite",
        suite.to_str().expect("utf-8 path"),
        "--backend",
        &backend,
        "--judge",
        &judge,
        "--datasets",
        datasets.to_str().expect("utf-8 path"),
        "--quiet",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    crate::support::cli::assert_success(&output);
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("valid JSON");

    // The scripted judge says yes to answers opening with "Sure": count that on the labels.
    let items = probes::detectors::judge_accuracy::jailbreakbench(&datasets).expect("the file");
    let (mut tp, mut p, mut tn, mut n) = (0u64, 0u64, 0u64, 0u64);
    for item in &items {
        let yes = item
            .attempt
            .response()
            .is_some_and(|r| r.trim_start().starts_with("Sure"));
        if item.positive {
            p += 1;
            tp += u64::from(yes);
        } else {
            n += 1;
            tn += u64::from(!yes);
        }
    }
    assert_eq!(p + n, 100);
    let measured = &summary["detector_accuracy"][0];
    assert_eq!(measured["detector"], "harm-judge");
    assert_eq!(measured["dataset"], "jailbreakbench-classifier-comparison");
    assert_eq!(
        [
            &measured["true_positives"],
            &measured["positives"],
            &measured["true_negatives"],
            &measured["negatives"],
            &measured["unscored"]
        ],
        [tp, p, tn, n, 0].map(Value::from).each_ref()
    );
    assert!(tp > 0 && tp < p && tn > 0, "a crude judge: {measured}");

    let observed = estimate(&summary, "jailbreakbench", "asr_judge", &[]);
    let corrected = estimate(&summary, "jailbreakbench", "asr_judge_corrected", &[]);
    let (se, sp) = (tp as f64 / p as f64, tn as f64 / n as f64);
    let expect = audit_core::stats::rogan_gladen(f(&observed["value"]), se, sp);
    assert!(
        (f(&corrected["value"]) - expect).abs() < 1e-12,
        "{corrected}"
    );
    assert_eq!(corrected["ci_method"], "rogan-gladen-bootstrap-wilson-hull");
    // The interval carries the judge's measurement error: wider than the observed Wilson one.
    let width = |e: &Value| f(&e["ci_high"]) - f(&e["ci_low"]);
    assert!(
        width(corrected) > width(observed),
        "{corrected} vs {observed}"
    );
    // The report says which accuracy corrected the judged rates.
    let markdown = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    // (with the Wilson intervals of sensitivity and specificity).
    let row = markdown
        .lines()
        .find(|l| l.starts_with("| harm-judge | jailbreakbench-classifier-comparison | "))
        .unwrap_or_else(|| panic!("{markdown}"));
    assert!(
        row.contains(&format!("| {tp}/{p} = ")) && row.contains(&format!("| {tn}/{n} = ")),
        "{row}"
    );
    let calibration = &summary["judge_calibration"][0];
    assert_eq!(calibration["sensitivity"]["k"], tp);
    assert!(
        f(&calibration["specificity"]["ci_low"]) < sp
            && sp < f(&calibration["specificity"]["ci_high"])
    );
}

//! The "What the fine-tune changed" section of compare.md and compare.html, by snapshot: a base
//! run against the same base plus a LoRA adapter, with and without significant changes.

#![allow(clippy::unwrap_used)]

use audit_core::stats;
use reports::compare::{
    render_changes_markdown, render_compare_html, Comparison, PairedTest, Side,
};

fn side(model: &str, files: &[(&str, &str)]) -> Side {
    Side {
        dir: format!("runs/{model}"),
        model: model.to_string(),
        backend: "candle".to_string(),
        files: files
            .iter()
            .map(|(p, h)| (p.to_string(), h.to_string()))
            .collect(),
        suites: vec!["bias-core@1".to_string()],
        seed: 0,
        n_attempts: 300,
    }
}

fn test_row(probe: &str, effect: f64, p: f64) -> PairedTest {
    PairedTest {
        suite: "bias-core".to_string(),
        probe: probe.to_string(),
        detector: "stereotype".to_string(),
        scale: "binary".to_string(),
        n: 100,
        base_mean: 0.5,
        new_mean: 0.5 + effect,
        effect,
        effect_ci_low: effect - 0.08,
        effect_ci_high: effect + 0.08,
        ci_method: "newcombe-paired".to_string(),
        method: "mcnemar-exact".to_string(),
        statistic: 10.0,
        p_value: p,
        q_holm: f64::NAN,
        q_bh: f64::NAN,
        base_only: 3,
        new_only: 15,
    }
}

/// A base run and the same base plus a LoRA adapter; q values adjusted as `compare` does.
fn fine_tune(tests: Vec<PairedTest>) -> Comparison {
    let base_files = [("models/base.gguf", "aaaa")];
    let new_files = [
        ("models/base.gguf", "aaaa"),
        ("adapters/lora/adapter_config.json", "bbbb"),
        ("adapters/lora/adapter_model.safetensors", "cccc"),
    ];
    let mut tests = tests;
    let p: Vec<f64> = tests.iter().map(|t| t.p_value).collect();
    for ((t, h), b) in tests
        .iter_mut()
        .zip(stats::holm(&p))
        .zip(stats::benjamini_hochberg(&p))
    {
        t.q_holm = h;
        t.q_bh = b;
    }
    Comparison {
        base: side("base", &base_files),
        new: side("base+lora", &new_files),
        confidence: 0.95,
        n_shared: 300,
        n_base_only: 0,
        n_new_only: 0,
        tests,
        warnings: Vec::new(),
    }
}

fn html_section(comparison: &Comparison) -> String {
    let html = render_compare_html(comparison).unwrap();
    let start = html.find("<!-- changes -->").unwrap();
    let end = html.find("<!-- /changes -->").unwrap();
    html[start..end].to_string()
}

#[test]
fn what_the_fine_tune_changed_names_the_significant_probes() {
    let comparison = fine_tune(vec![
        test_row("crows-pairs", 0.12, 0.0004),
        test_row("winobias", -0.2, 0.00001),
        test_row("bbq", 0.03, 0.4),
    ]);
    let md = render_changes_markdown(&comparison);
    assert!(md.contains("| winobias |") && md.contains("| crows-pairs |"));
    assert!(!md.contains("| bbq |"), "{md}");
    assert!(
        md.find("winobias") < md.find("crows-pairs"),
        "most significant first"
    );
    insta::assert_snapshot!("changed_markdown", md);
    insta::assert_snapshot!("changed_html", html_section(&comparison));
}

#[test]
fn what_the_fine_tune_changed_says_so_when_nothing_did() {
    let comparison = fine_tune(vec![
        test_row("crows-pairs", 0.02, 0.3),
        test_row("bbq", -0.01, 0.7),
    ]);
    let md = render_changes_markdown(&comparison);
    assert!(md.contains("No probe changed significantly: none of the 2 paired tests"));
    insta::assert_snapshot!("unchanged_markdown", md);
    insta::assert_snapshot!("unchanged_html", html_section(&comparison));
    // Two unrelated models: no "base plus" line.
    let mut other = comparison.clone();
    other.new.files = vec![("models/other.gguf".to_string(), "dddd".to_string())];
    assert!(!render_changes_markdown(&other).contains("plus:"));
}

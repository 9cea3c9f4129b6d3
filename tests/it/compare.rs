//! End-to-end tests of `probity compare BASE NEW`: paired tests on the shared case ids, written
//! as compare.json, compare.md and compare.html (by default into NEW/compare-<base name>).

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{probity, read_json};

use std::path::Path;

fn run(profile: &str, out: &Path, extra: &[&str]) {
    let backend = format!("scripted:{}", fixtures::profile(profile).display());
    let mut args = vec![
        "run",
        "--suite",
        "counterfactual-refusal",
        "--backend",
        &backend,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = probity(&args);
    crate::support::cli::assert_success(&output);
}

#[test]
fn a_regression_is_found_on_the_shared_cases() {
    let dir = tempfile::tempdir().unwrap();
    let (base, new) = (dir.path().join("base"), dir.path().join("new"));
    run("null", &base, &[]);
    run("planted-failure", &new, &["--limit", "40"]);
    let output = probity(&["compare", base.to_str().unwrap(), new.to_str().unwrap()]);
    crate::support::cli::assert_success(&output);
    let out = new.join("compare-base");
    for file in ["compare.json", "compare.md", "compare.html"] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let comparison = read_json(&out.join("compare.json"));
    assert_eq!(comparison["n_shared"], 40);
    assert_eq!(comparison["n_base_only"], 620);
    assert_eq!(comparison["n_new_only"], 0);
    let tests = comparison["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0]["method"], "mcnemar-exact");
    assert_eq!(tests[0]["detector"], "refusal");
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    insta::assert_snapshot!("compare_md", md);
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert!(
        html.contains("<svg") && !html.contains("<script"),
        "static page with a chart"
    );
}

#[test]
fn a_run_compared_with_itself_shows_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("a");
    run("refusal-gap-20", &base, &["--limit", "22"]);
    let out = dir.path().join("cmp");
    let output = probity(&[
        "compare",
        base.to_str().unwrap(),
        base.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    crate::support::cli::assert_success(&output);
    let comparison = read_json(&out.join("compare.json"));
    let test = &comparison["tests"][0];
    assert_eq!(test["effect"], 0.0);
    assert_eq!(test["p_value"], 1.0);
}

#[test]
fn compare_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let output = probity(&[
        "compare",
        missing.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no such run directory"), "{stderr}");
}

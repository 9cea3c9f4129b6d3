//! End-to-end tests of policy gates: `probity gate DIR --policy FILE` and `probity run --policy`
//! exit 1 on a planted failure and 0 on a passing profile, name the failing gate in junit.xml,
//! results.sarif and summary.md, and a bad policy is one line naming the file and the line,
//! with exit code 2.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{fails, probity};

use std::path::Path;
use std::process::Output;

use serde_json::Value;

const SUITE: &str = "counterfactual-refusal";

fn policy(name: &str) -> String {
    fixtures::root()
        .join("policies")
        .join(format!("{name}.toml"))
        .display()
        .to_string()
}

/// Runs the built-in suite on a scripted profile; returns the output (any exit code).
fn run(profile: &str, out: &Path, extra: &[&str]) -> Output {
    let backend = format!("scripted:{}", fixtures::profile(profile).display());
    let mut args = vec![
        "run",
        "--suite",
        SUITE,
        "--backend",
        &backend,
        "--quiet",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    probity(&args)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_planted_failure_fails_the_gate_and_every_format_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("failing");
    let output = run("planted-failure", &out, &[]);
    crate::support::cli::assert_success(&output);

    let output = probity(&[
        "gate",
        out.to_str().unwrap(),
        "--policy",
        &policy("release"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL  no group disparity over 5 points"),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 2 gates"), "{stdout}");

    let summary: Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let gates = summary["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 2);
    assert_eq!(gates[1]["name"], "no group disparity over 5 points");
    assert_eq!(gates[1]["passed"], false);
    assert!(gates[1]["detail"]
        .as_str()
        .unwrap()
        .contains("group=Muslim"));

    let junit = read(&out.join("junit.xml"));
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(
        junit.contains("<testcase name=\"no group disparity over 5 points\""),
        "{junit}"
    );
    assert!(junit.contains("<failure type=\"gate\""), "{junit}");
    let sarif: Value = serde_json::from_str(&read(&out.join("results.sarif"))).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["level"] == "error"
        && r["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Gate `no group disparity over 5 points` failed")));
    let md = read(&out.join("summary.md"));
    assert!(
        md.contains("**❌ FAIL**: 1 of 2 gates failed (`no group disparity over 5 points`)"),
        "{md}"
    );
    let html = read(&out.join("report.html"));
    assert!(
        html.contains("FAIL: 1 of 2 gates failed"),
        "the report leads with the verdict"
    );

    // The gates are part of summary.json now, and `report` keeps them.
    let output = probity(&["report", out.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(read(&out.join("summary.md")).contains("❌ FAIL"));
}

#[test]
fn a_passing_profile_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("passing");
    let output = run("null", &out, &["--policy", &policy("release")]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("all 2 gates"), "{stdout}");
    let md = read(&out.join("summary.md"));
    assert!(md.contains("**✅ PASS**: all 2 gates passed"), "{md}");
    let junit = read(&out.join("junit.xml"));
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let output = probity(&[
        "gate",
        out.to_str().unwrap(),
        "--policy",
        &policy("release"),
    ]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn run_with_a_policy_writes_every_file_then_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = run("planted-failure", &out, &["--policy", &policy("release")]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "manifest.json",
        "attempts.jsonl",
        "attempts.parquet",
        "summary.json",
        "report.html",
        "summary.md",
        "junit.xml",
        "results.sarif",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let manifest: Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    assert_eq!(manifest["status"], "complete");
    insta::assert_snapshot!("planted_failure_summary_md", read(&out.join("summary.md")));
}

#[test]
fn bad_policies_and_runs_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let output = run("null", &out, &["--limit", "11"]);
    assert!(output.status.success());
    let out = out.to_str().unwrap();

    let check = |text: &str, expect: &str| {
        let path = dir.path().join("bad-policy.toml");
        std::fs::write(&path, text).unwrap();
        let line = fails(&["gate", out, "--policy", path.to_str().unwrap()]);
        assert!(
            line.contains("bad-policy.toml") && line.contains(expect),
            "{line}\nexpected: {expect}"
        );
    };
    let good = read(Path::new(&policy("release")));
    check("[[gate]\n", "line 1:");
    check(
        &good.replace("max_ci_high", "max_ci_hihg"),
        "line 11: unknown field `max_ci_hihg`",
    );
    check(
        &good.replace("alpha = 0.05", "alpha = \"0.05\""),
        "line 17: invalid type",
    );
    check(
        &good.replace("correction = \"bh\"", "correction = \"bonferroni\""),
        "line 13: gate `no group disparity over 5 points`: unknown correction `bonferroni`",
    );

    let line = fails(&["gate", out, "--policy", "/nonexistent/policy.toml"]);
    assert!(line.contains("/nonexistent/policy.toml"), "{line}");
    let missing = dir.path().join("nothing");
    let line = fails(&[
        "gate",
        missing.to_str().unwrap(),
        "--policy",
        &policy("release"),
    ]);
    assert!(line.contains("no such run directory"), "{line}");

    // A bad policy stops `run` before any model time is spent.
    let fresh = dir.path().join("fresh");
    let path = dir.path().join("bad-policy.toml");
    std::fs::write(&path, "[[gate]]\nname = \"a\"\n").unwrap();
    let backend = format!("scripted:{}", fixtures::profile("null").display());
    let line = fails(&[
        "run",
        "--suite",
        SUITE,
        "--backend",
        &backend,
        "--out",
        fresh.to_str().unwrap(),
        "--policy",
        path.to_str().unwrap(),
    ]);
    assert!(line.contains("line 1: gate `a`"), "{line}");
    assert!(!fresh.exists(), "nothing was run");
}

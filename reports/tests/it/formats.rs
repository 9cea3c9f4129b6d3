//! Every report format of a scripted run with a planted failure, rendered in process from a run
//! with a fixed manifest (so that the outputs are byte-stable): insta snapshots of junit.xml,
//! results.sarif, summary.md and report.html; results.sarif validated against the SARIF 2.1.0
//! JSON schema and junit.xml against the JUnit XML schema (with xmllint: an ignored test that
//! .ci/run runs).

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use audit_core::Generation;
use reports::RunFiles;

const SUITE: &str = "counterfactual-refusal";

/// The shared schemas folder beside the repository.
fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/schemas")
}

fn policy_path(name: &str) -> PathBuf {
    fixtures::root()
        .join("policies")
        .join(format!("{name}.toml"))
}

/// Runs the built-in suite on a scripted profile in process and applies a policy; the manifest
/// is fixed so that every rendering is byte-stable.
fn scripted_run(profile: &str, policy: &str) -> RunFiles {
    let suites = vec![suites::load(SUITE, &suites::Context::new(&fixtures::datasets())).unwrap()];
    let generation = Generation {
        max_new_tokens: 64,
        temperature: 0.0,
        top_p: 1.0,
        top_k: None,
        seed: 0,
        stop: Vec::new(),
    };
    let mut files = crate::support::scripted_run(
        &suites,
        &fixtures::profile(profile),
        &format!("fixtures/profiles/{profile}.toml"),
        generation,
        ["probity", "run", "--suite", SUITE]
            .map(str::to_string)
            .to_vec(),
    );
    let policy = reports::load_policy(&policy_path(policy)).unwrap();
    files.summary.gates = reports::evaluate(&policy, &files.summary);
    files
}

#[test]
fn planted_failure_snapshots() {
    let files = scripted_run("planted-failure", "release");
    assert!(files.summary.gates.iter().any(|g| !g.passed));
    let junit = reports::render_junit(&files);
    let sarif = reports::render_sarif(&files);
    let markdown = reports::render_markdown(&files);
    let html = reports::render_html(&files).unwrap();
    for (name, text) in [
        ("junit", &junit),
        ("sarif", &sarif),
        ("markdown", &markdown),
    ] {
        assert!(
            text.contains("no group disparity over 5 points"),
            "{name} does not name the failing gate"
        );
    }
    insta::assert_snapshot!("planted_failure_junit_xml", junit);
    insta::assert_snapshot!("planted_failure_results_sarif", sarif);
    insta::assert_snapshot!("planted_failure_summary_md", markdown);
    insta::assert_snapshot!("planted_failure_report_html", html);
}

#[test]
fn sarif_is_valid_sarif_2_1_0() {
    let schema_text = std::fs::read_to_string(schemas().join("sarif-schema-2.1.0.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&schema_text).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&schema)
        .unwrap();
    for (profile, policy) in [
        ("planted-failure", "release"),
        ("null", "release"),
        ("some-errors", "release"),
    ] {
        let files = scripted_run(profile, policy);
        let sarif: serde_json::Value =
            serde_json::from_str(&reports::render_sarif(&files)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&sarif)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{profile}: {errors:#?}");
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        let failed_gates = files.summary.gates.iter().filter(|g| !g.passed).count();
        let findings = files.summary.tests.iter().filter(|t| t.q_bh < 0.05).count();
        assert_eq!(results.len(), failed_gates + findings, "{profile}");
    }
}

#[test]
#[ignore = "needs xmllint (apt-get install libxml2-utils); .ci/run runs it: cargo test -p reports --test it -- --ignored junit"]
fn junit_is_valid_against_the_junit_schema() {
    let dir = tempfile::tempdir().unwrap();
    for (profile, policy) in [
        ("planted-failure", "release"),
        ("null", "release"),
        ("some-errors", "release"),
    ] {
        let files = scripted_run(profile, policy);
        let path = dir.path().join(format!("{profile}.xml"));
        std::fs::write(&path, reports::render_junit(&files)).unwrap();
        let output = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schemas().join("JUnit.xsd"))
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("xmllint cannot run ({e}): run .ci/run's install step (apt-get install libxml2-utils)")
            });
        assert!(
            output.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn gates_follow_the_planted_effects() {
    let failing = scripted_run("planted-failure", "release");
    let verdicts: Vec<(&str, bool)> = failing
        .summary
        .gates
        .iter()
        .map(|g| (g.name.as_str(), g.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("refusal rate upper bound ≤ 0.15", true),
            ("no group disparity over 5 points", false)
        ]
    );
    let passing = scripted_run("null", "release");
    assert!(
        passing.summary.gates.iter().all(|g| g.passed),
        "{:?}",
        passing.summary.gates
    );
}

//! Helpers shared by the end-to-end tests: run the probity binary, expect a one-line error,
//! read a JSON file of a run directory.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the probity binary built for these tests.
pub fn probity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(args)
        .output()
        .expect("the probity binary runs")
}

/// Fails the test with probity's stderr unless the run succeeded.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs probity expecting exit code 2 and exactly one line on stderr, never a panic; returns
/// that line.
pub fn fails(args: &[&str]) -> String {
    let output = probity(args);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim_end().to_string()
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The option log-likelihoods of one journaled Choice attempt: `token_logprobs.logprobs` where
/// the backend counted tokens, `logprobs` where it did not (docs/run-directory.md).
pub fn option_logprobs(attempt: &Value) -> Vec<f64> {
    let values = attempt["token_logprobs"]["logprobs"]
        .as_array()
        .or_else(|| attempt["logprobs"].as_array())
        .unwrap_or_else(|| panic!("no option log-probabilities in {attempt}"));
    values
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

//! End-to-end tests of `probity merge`: shards of one run (`--shard K/N`) merge into a run whose
//! summary equals the unsharded run's, and shards of different runs, repeated shards or runs
//! that are not shards are refused with one line and exit code 2.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use crate::support::cli;
use cli::{fails, probity};

use std::path::Path;

fn run(out: &Path, extra: &[&str]) {
    let backend = format!("scripted:{}", fixtures::profile("refusal-gap-20").display());
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
fn shards_merge_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    run(&p("whole"), &["--seed", "3"]);
    run(&p("s1"), &["--seed", "3", "--shard", "1/3"]);
    run(&p("s2"), &["--seed", "3", "--shard", "2/3"]);
    run(&p("s3"), &["--seed", "3", "--shard", "3/3"]);
    let output = probity(&[
        "merge",
        p("s3").to_str().unwrap(),
        p("s1").to_str().unwrap(),
        p("s2").to_str().unwrap(),
        "--out",
        p("merged").to_str().unwrap(),
    ]);
    crate::support::cli::assert_success(&output);
    assert_eq!(
        std::fs::read_to_string(p("whole").join("summary.json")).unwrap(),
        std::fs::read_to_string(p("merged").join("summary.json")).unwrap(),
        "the statistics are recomputed from every attempt"
    );
    let lines = |d: &Path| {
        let mut lines: Vec<String> = std::fs::read_to_string(d.join("attempts.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(lines(&p("whole")), lines(&p("merged")));
    for file in [
        "report.html",
        "summary.md",
        "junit.xml",
        "results.sarif",
        "attempts.parquet",
    ] {
        assert!(p("merged").join(file).is_file(), "{file} is missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("merged").join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["shard"], serde_json::Value::Null);
    assert_eq!(manifest["n_cases"], 660);

    // Two of three shards merge, with a warning that the run is not whole.
    let output = probity(&[
        "merge",
        p("s1").to_str().unwrap(),
        p("s2").to_str().unwrap(),
        "--out",
        p("partial").to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let summary = std::fs::read_to_string(p("partial").join("summary.json")).unwrap();
    assert!(summary.contains("shards 3/3 are missing"), "{summary}");
}

#[test]
fn shards_of_different_runs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    run(&p("a1"), &["--shard", "1/2"]);
    run(&p("b2"), &["--shard", "2/2", "--seed", "9"]);
    run(&p("whole"), &["--limit", "5"]);
    let out = p("out");
    let out = out.to_str().unwrap();
    let line = fails(&[
        "merge",
        p("a1").to_str().unwrap(),
        p("b2").to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(
        line.contains("not a shard of the same run") && line.contains("seed"),
        "{line}"
    );
    let line = fails(&[
        "merge",
        p("a1").to_str().unwrap(),
        p("a1").to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(line.contains("given twice"), "{line}");
    let line = fails(&[
        "merge",
        p("a1").to_str().unwrap(),
        p("whole").to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(line.contains("not a shard"), "{line}");
    let line = fails(&["merge", p("a1").to_str().unwrap(), "--out", out]);
    assert!(line.contains("at least two"), "{line}");
    assert!(!Path::new(out).exists(), "nothing was written");
}

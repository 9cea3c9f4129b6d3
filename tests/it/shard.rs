//! End-to-end test of `probity run --shard K/N` on the scripted backend: the shards of a run
//! partition its cases (disjoint, and together every case of the unsharded run, each once).

#![allow(clippy::unwrap_used)] // Tests may panic on what they did not expect.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Runs the counterfactual suite on the null profile into `out` with `extra` flags; returns the
/// (suite, case id) of every journaled attempt, asserting none appears twice.
fn case_ids(out: &Path, extra: &[&str]) -> BTreeSet<(String, String)> {
    let backend = format!("scripted:{}", fixtures::profile("null").display());
    let output = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "--suite", "counterfactual-refusal", "--backend"])
        .arg(&backend)
        .args(["--quiet", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("the probity binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let journal = std::fs::read_to_string(out.join("attempts.jsonl")).expect("attempts.jsonl");
    let mut ids = BTreeSet::new();
    for line in journal.lines() {
        let attempt: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let id = (
            attempt["suite"].as_str().expect("suite").to_string(),
            attempt["case_id"].as_str().expect("case_id").to_string(),
        );
        assert!(ids.insert(id.clone()), "{id:?} journaled twice");
    }
    ids
}

#[test]
fn shards_partition_the_cases() {
    let dir = tempfile::tempdir().unwrap();
    let whole = case_ids(&dir.path().join("whole"), &[]);
    assert_eq!(whole.len(), 660, "60 templates × 11 groups");
    let first = case_ids(&dir.path().join("1of2"), &["--shard", "1/2"]);
    let second = case_ids(&dir.path().join("2of2"), &["--shard", "2/2"]);
    assert!(first.is_disjoint(&second), "a case is in both shards");
    let union: BTreeSet<_> = first.union(&second).cloned().collect();
    assert_eq!(union, whole, "the shards together are the whole run");
    // A hash split of 660 cases is roughly even (a lopsided split would mean a bad hash).
    for shard in [&first, &second] {
        assert!((250..=410).contains(&shard.len()), "{}", shard.len());
    }
    // Three shards partition the same cases too.
    let thirds: Vec<_> = (1..=3)
        .map(|k| {
            let spec = format!("{k}/3");
            case_ids(&dir.path().join(format!("{k}of3")), &["--shard", &spec])
        })
        .collect();
    assert_eq!(thirds.iter().map(BTreeSet::len).sum::<usize>(), 660);
    let union: BTreeSet<_> = thirds.iter().flatten().cloned().collect();
    assert_eq!(union, whole);
}

